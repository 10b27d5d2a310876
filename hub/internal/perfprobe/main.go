// Command perfprobe is a scratch CPU-time probe (not committed).
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/sessionhub/sessionhub/auth"
	"github.com/sessionhub/sessionhub/sessions"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func measure(name string, n int, f func()) {
	c0 := cpu()
	for range n {
		f()
	}
	fmt.Printf("%-28s %8.1f µs CPU/op\n", name, float64((cpu()-c0).Microseconds())/float64(n))
}

func main() {
	keys, _ := auth.EphemeralKeySet()
	tokens, err := auth.NewTokens(auth.TokenConfig{Issuer: "http://localhost:8080"}, keys)
	if err != nil {
		panic(err)
	}
	s := &sessions.Session{ID: sessions.RandomString(16), UserID: "8c1d7c4e-0b5a-4f43-9a39-5d1b8f1f2a10",
		Kind: sessions.KindBrowser, Scopes: []string{"sub:room:*", "pub:room:lobby"}, CreatedAt: time.Now()}
	tok, _, err := tokens.Mint(s)
	if err != nil {
		panic(err)
	}
	fmt.Println("token bytes", len(tok))
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte(tok[:len(tok)-87])
	sig := ed25519.Sign(priv, msg)
	if len(os.Args) > 1 {
		f, _ := os.Create(os.Args[1])
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	const n = 5000
	for range 3 {
		measure("ed25519.Verify raw", n, func() { ed25519.Verify(pub, msg, sig) })
		measure("auth.Tokens.Verify", n, func() {
			if _, err := tokens.Verify(tok); err != nil {
				panic(err)
			}
		})
		p := jwt.NewParser()
		measure("jwt.ParseUnverified", n, func() { _, _, _ = p.ParseUnverified(tok, jwt.MapClaims{}) })
	}
}
