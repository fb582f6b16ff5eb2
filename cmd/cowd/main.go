// Command cowd serves the copy-on-write view of a guest virtual block
// device over NBD; see "cowd -h" and docs/cowd.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	case o.version:
		fmt.Println("cowd", version)
		os.Exit(0)
	}
	ready := newReadiness()
	if !o.foreground && !ready.isChild() {
		os.Exit(daemonize(o, os.Stderr))
	}
	log, err := newLogger(o)
	if err != nil {
		ready.done(err)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err = run(ctx, o, log, ready.done)
	stop()
	if err != nil {
		log.Error("cowd failed", zap.Error(err))
		log.Sync()
		os.Exit(1)
	}
	log.Sync()
}

// newLogger builds the console logger: warnings by default, info with -v,
// debug with -d; to stderr or the --log file.
func newLogger(o *options) (*zap.Logger, error) {
	level := zapcore.WarnLevel
	switch {
	case o.debug:
		level = zapcore.DebugLevel
	case o.verbose:
		level = zapcore.InfoLevel
	}
	out := zapcore.Lock(os.Stderr)
	if o.logFile != "" {
		f, err := os.OpenFile(o.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return nil, fmt.Errorf("cowd: log file: %w", err)
		}
		out = zapcore.Lock(f)
	}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), out, level)
	return zap.New(core).Named("cowd").With(zap.String("name", o.name)), nil
}
