// Command cdpemu serves a local emulator of the Experiture CDP Profiles API (package
// cdpload/sink/cdpemu) for demos and end-to-end tests of cdpload. Run it with --help.
//
// Exit codes: 0 after a clean stop (SIGINT, SIGTERM) or --help, 2 for a bad command line,
// 1 for anything else (a schema or data file that does not load, a port in use).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"cdpload/sink/cdpemu"
)

// shutdownGrace is how long in-flight requests get to finish at a stop.
const shutdownGrace = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err on stderr and maps it to the exit code.
func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "cdpemu: %v\nRun 'cdpemu --help' for usage.\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "cdpemu: %v\n", err)
		return 1
	}
}

// run serves until ctx is done, then shuts down gracefully and, with --data, snapshots.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return err
	}
	if err != nil {
		return err
	}
	schema, err := loadSchema(o.schemaFile)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	emu, err := cdpemu.New(cdpemu.Config{
		Schema: schema, Tokens: o.tokens,
		Rate: o.rate, Burst: o.burst,
		FailRate: o.failRate, FailAfterApplyRate: o.failAfterApplyRate, ResetRate: o.resetRate,
		Latency: o.latency, Jitter: o.jitter, Capacity: o.capacity, Seed: o.seed,
		DataFile: o.dataFile, Logger: logger,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String() + cdpemu.BasePath
	// The listener already accepts connections, which wait for Serve. The address goes to
	// stdout before --addr-file appears, so whoever waits for the file sees both.
	fmt.Fprintf(stdout, "listening on %s\n", base)
	if o.addrFile != "" {
		if err := writeFileAtomic(o.addrFile, []byte(base)); err != nil {
			ln.Close()
			return fmt.Errorf("--addr-file: %w", err)
		}
	}
	// Handlers sleeping in Latency or Hold watch their request's context, which derives from
	// this one: cancelling it ends them when the grace period is over.
	reqCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	srv := &http.Server{
		Handler:           emu,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("cdpemu listening", "url", base, "data", o.dataFile)

	select {
	case err := <-served:
		return err // Serve only returns early on a listener failure
	case <-ctx.Done():
	}
	logger.Info("cdpemu stopping")
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		abandon()
		srv.Close()
	}
	<-served
	if o.dataFile != "" {
		if err := emu.Snapshot(); err != nil {
			return err
		}
		logger.Info("cdpemu saved profiles", "data", o.dataFile, "profiles", emu.Stats().Profiles)
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file and a rename, so that a
// reader polling for path never sees it half written.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
