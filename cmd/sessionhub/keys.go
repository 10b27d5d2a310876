package main

import (
	"errors"
	"io"
)

// keysCmd runs `sessionhub keys generate`.
func keysCmd(args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "generate" {
		return &usageError{err: errors.New("usage: sessionhub keys generate")}
	}
	return errors.New("keys generate: not available in this build yet")
}
