package loader

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cdpload/checkpoint"
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

// A checkpoint held by another run is refused in the lock's words, once.
func TestRunLockedSaysItOnce(t *testing.T) {
	cfg, _ := testConfig(t, 5, &fakeSender{upsert: accepted})
	ckpt := cfg.Path + ".cdpload.ckpt"
	lock, err := checkpoint.Acquire(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	_, err = Run(context.Background(), cfg)
	want := fmt.Sprintf("checkpoint %s is in use by another cdpload (pid %d)", ckpt, os.Getpid())
	if !errors.Is(err, ErrLocked) || err.Error() != want {
		t.Fatalf("err %v, want ErrLocked saying %s", err, want)
	}
}

// A missing input is named once, by the open that failed.
func TestRunMissingInputNamedOnce(t *testing.T) {
	cfg, _ := testConfig(t, 5, &fakeSender{upsert: accepted})
	cfg.Path = filepath.Join(filepath.Dir(cfg.Path), "gone.csv")
	_, err := Run(context.Background(), cfg)
	want := "input: open " + cfg.Path + ": no such file or directory"
	var ce *ConfigError
	if !errors.As(err, &ce) || err.Error() != want {
		t.Fatalf("err %v, want a ConfigError saying %s", err, want)
	}
	if strings.Count(err.Error(), cfg.Path) != 1 {
		t.Errorf("the path is named %d times", strings.Count(err.Error(), cfg.Path))
	}
}
