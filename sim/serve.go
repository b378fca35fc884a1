package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Serve builds a simulator from cfg, listens on addr (a loopback address such as
// "127.0.0.1:0") and serves until ctx is done. It logs the base URL, which serves
// both the stream (/companies) and the REST API.
func Serve(ctx context.Context, addr string, cfg Config, log *slog.Logger) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sim: listen on %s: %w", addr, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if ap, ok := ln.Addr().(*net.TCPAddr); ok && !ap.IP.IsLoopback() {
		log.Warn("simulator listening on a non-loopback address", "addr", ln.Addr().String())
	}
	log.Info("simulator listening", "url", "http://"+ln.Addr().String(),
		"companies", s.cfg.Companies, "seed", s.cfg.Seed, "rate", s.cfg.Rate,
		"first_timepoint", s.cfg.FirstTimepoint)
	return s.Serve(ctx, ln)
}

// Serve serves s on ln until ctx is done, then closes ln and every connection.
func (s *Sim) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("sim: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("sim: serve: %w", err)
	}
	return nil
}
