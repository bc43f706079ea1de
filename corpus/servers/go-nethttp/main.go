// Command server starts Go's standard net/http server, as a user's service
// does, for the rollout-harness corpus. PORT and HOST say where to listen,
// POD_NAME goes into X-Pod-Name. With SHUTDOWN=true (the documented pattern,
// https://pkg.go.dev/net/http#Server.Shutdown) SIGTERM calls
// Server.Shutdown with SHUTDOWN_TIMEOUT seconds; with SHUTDOWN=false nothing
// handles SIGTERM and the Go runtime exits at once (os/signal: "the default
// behavior ... SIGTERM causes the program to exit").
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func main() {
	pod := os.Getenv("POD_NAME")
	workMs, _ := strconv.Atoi(envOr("WORK_MS", "20"))
	timeout, _ := strconv.Atoi(envOr("SHUTDOWN_TIMEOUT", "10"))
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/work" && workMs > 0 {
			time.Sleep(time.Duration(workMs) * time.Millisecond)
		}
		w.Header().Set("X-Pod-Name", pod)
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Addr: envOr("HOST", "127.0.0.1") + ":" + envOr("PORT", "8080"), Handler: mux}
	if envOr("SHUTDOWN", "true") != "true" {
		log.Fatal(srv.ListenAndServe())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe() }()
	select {
	case err := <-done:
		log.Fatal(err)
	case <-ctx.Done():
	}
	log.Print("signal received: Server.Shutdown")
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeout)*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Print("shutdown: ", err)
	}
	log.Print("exiting")
}
