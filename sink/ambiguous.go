package sink

import (
	"context"
	"errors"
	"net"
	"net/http"
)

// Ambiguous reports whether a failed request may still be applied by the server later:
// it timed out, or a gateway answered 502 or 504 for a backend that may still be working
// on it. The caller should not send the same profile again until such an original has had
// time to finish or die. A reset connection is not counted here (a back-off covers it),
// nor is a 5xx that the API itself answered.
func (r Result) Ambiguous() bool {
	if r.Outcome != Transient {
		return false
	}
	switch r.Status {
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	case 0:
		var netErr net.Error
		return errors.Is(r.Err, context.DeadlineExceeded) || (errors.As(r.Err, &netErr) && netErr.Timeout())
	}
	return false
}
