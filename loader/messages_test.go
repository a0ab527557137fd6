package loader

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"cdpload/sink"
)

// A fatal answer is named with its status once: "HTTP 200: the body is not JSON", not
// "HTTP 200 HTTP 200 with a non-JSON body".
func TestRunFatalNamesTheStatusOnce(t *testing.T) {
	s := &fakeSender{upsert: func(string) sink.Result {
		return sink.Classify(200, http.Header{}, []byte("<html>welcome</html>"), nil, time.Now())
	}}
	cfg, _ := testConfig(t, 20, s)
	_, err := Run(context.Background(), cfg)
	want := "the API refused the run: HTTP 200: the body is not JSON: the server is not the Profiles API; check --base-url"
	var stop *StopError
	if !errors.As(err, &stop) || err.Error() != want {
		t.Fatalf("err %v\nwant a StopError %s", err, want)
	}
}
