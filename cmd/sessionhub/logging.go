package main

import (
	"io"
	"log/slog"
)

// newLogger makes the process's logger: JSON for log collectors in
// production, text for a developer's terminal (Config.LogFormat).
func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
