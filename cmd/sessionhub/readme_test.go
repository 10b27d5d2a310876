package main

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestREADMEConfiguration keeps the README's configuration table in step
// with the settings the server parses: every variable and its flag.
func TestREADMEConfiguration(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(raw)
	for _, s := range settings() {
		row := "| `" + s.env + "` | `--" + s.flag + "` |"
		require.True(t, strings.Contains(readme, row), "README.md lacks the row of %s (%s)", s.env, row)
	}
}
