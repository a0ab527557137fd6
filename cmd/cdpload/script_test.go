package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"cdpload/sink/cdpemu"
)

// scriptCommands are the commands a script runs as processes of their own: this test
// binary, started under the command's name, runs the command on the process's arguments,
// streams and environment.
var scriptCommands = map[string]func() int{"cdpload-process": processMain}

// scriptCommand reports whether this process was started as one of scriptCommands.
func scriptCommand() bool {
	_, ok := scriptCommands[filepath.Base(os.Args[0])]
	return ok
}

// TestScripts runs the sessions in testdata/script: each .txtar file is one session of
// commands, with the files it starts with, and what it must print, exit with and leave.
// $EXAMPLES is the repository's examples folder. A script's commands, besides testscript's own:
//
//	emulator                  start an emulator on loopback for this script; $E is its base URL,
//	                          $EMU_ROOT the server's root
//	cdpload ARGS...           run the command (a process of its own) in the script's folder
//	status N                  the last cdpload exited with N
//	profiles                  print the emulator's profiles, one JSON object a line, sorted
//	upserts N                 the emulator received N upserts, whatever became of them
//
// Real-process tests remain for what a script cannot show: signals, kills and the image.
func TestScripts(t *testing.T) {
	examples, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			env.Values[scriptKey{}] = &scriptState{}
			env.Setenv("EXAMPLES", examples)
			return nil
		},
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"emulator": scriptEmulator,
			"cdpload":  scriptCdpload,
			"status":   scriptStatus,
			"profiles": scriptProfiles,
			"upserts":  scriptUpserts,
		},
	})
}

type scriptKey struct{}

// scriptState is what a script's commands share.
type scriptState struct {
	emu     *cdpemu.Server
	upserts atomic.Int64
	status  int // the last cdpload's exit code
}

func stateOf(ts *testscript.TestScript) *scriptState { return ts.Value(scriptKey{}).(*scriptState) }

func scriptEmulator(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: emulator")
	}
	st := stateOf(ts)
	emu, err := cdpemu.New(cdpemu.Config{})
	ts.Check(err)
	st.emu = emu
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/profiles/upsert") {
			st.upserts.Add(1)
		}
		emu.ServeHTTP(w, r)
	}))
	ts.Defer(srv.Close)
	ts.Setenv("E", srv.URL+"/public/v1")
	ts.Setenv("EMU_ROOT", srv.URL)
}

func scriptCdpload(ts *testscript.TestScript, neg bool, args []string) {
	err := ts.Exec("cdpload-process", args...)
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("cdpload: %v", err)
	}
	stateOf(ts).status = code
	if neg != (code != 0) {
		ts.Fatalf("cdpload exited %d", code)
	}
}

func scriptStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: status N")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	if got := stateOf(ts).status; got != want {
		ts.Fatalf("cdpload exited %d, want %d", got, want)
	}
}

func scriptProfiles(ts *testscript.TestScript, neg bool, args []string) {
	st := stateOf(ts)
	if neg || len(args) != 0 || st.emu == nil {
		ts.Fatalf("usage: profiles, after emulator")
	}
	var lines []string
	for _, p := range st.emu.Profiles() {
		line, err := json.Marshal(p) // map keys sorted
		ts.Check(err)
		lines = append(lines, string(line))
	}
	slices.Sort(lines) // the order they were created in depends on the workers
	for _, l := range lines {
		fmt.Fprintln(ts.Stdout(), l)
	}
}

func scriptUpserts(ts *testscript.TestScript, neg bool, args []string) {
	st := stateOf(ts)
	if neg || len(args) != 1 || st.emu == nil {
		ts.Fatalf("usage: upserts N, after emulator")
	}
	want, err := strconv.ParseInt(args[0], 10, 64)
	ts.Check(err)
	if got := st.upserts.Load(); got != want {
		ts.Fatalf("the emulator received %d upserts, want %d", got, want)
	}
}
