// Command chwatch watches the Companies House companies stream into SQLite
// and catches companies entering and leaving strike-off. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/chwatch/chwatch/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Run(ctx, os.Args, os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}
