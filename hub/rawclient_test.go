package hub

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
)

// rawClient is a minimal WebSocket client for benchmarks: a plain TCP
// connection with no goroutine and no buffers of its own, so the client
// costs next to nothing beside the server it measures.
type rawClient struct {
	nc net.Conn
	br *bufio.Reader
}

func rawDial(wsURL, token string) (*rawClient, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, err
	}
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	req := "GET " + u.Path + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13" +
		"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	c := &rawClient{nc: nc, br: br}
	if _, err := c.readFrame(); err != nil { // welcome
		nc.Close()
		return nil, err
	}
	return c, nil
}

// readFrame reads one unmasked server frame and returns its payload.
func (c *rawClient) readFrame() ([]byte, error) {
	_, p, err := c.readFrameOp()
	return p, err
}

// readFrameOp reads one unmasked server frame: its opcode and payload.
func (c *rawClient) readFrameOp() (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return 0, nil, errors.New("frame too long")
	}
	p := make([]byte, n)
	_, err := io.ReadFull(c.br, p)
	return h[0] & 0x0f, p, err
}

// sendText writes a masked text frame (zero mask key: valid, and free).
func (c *rawClient) sendText(p []byte) error {
	hdr := []byte{0x81, 0x80 | byte(len(p)), 0, 0, 0, 0}
	if len(p) >= 126 {
		return errors.New("rawClient: short messages only")
	}
	_, err := c.nc.Write(append(hdr, p...))
	return err
}

// clientProcess runs when the test binary is started as a load client
// (HUB_BENCH_CLIENT=1): it opens HUB_BENCH_N sockets to HUB_BENCH_URL with
// benchToken tokens from HUB_BENCH_BASE on, HUB_BENCH_CONC (default 64)
// handshakes in flight as a real load tool would, optionally subscribes
// each to HUB_BENCH_CHANNEL and drains what arrives, prints "ready", and
// exits when stdin closes.
func clientProcess() int {
	n, _ := strconv.Atoi(os.Getenv("HUB_BENCH_N"))
	wsURL, channel := os.Getenv("HUB_BENCH_URL"), os.Getenv("HUB_BENCH_CHANNEL")
	base, _ := strconv.Atoi(os.Getenv("HUB_BENCH_BASE"))
	conc, _ := strconv.Atoi(os.Getenv("HUB_BENCH_CONC"))
	if conc <= 0 {
		conc = 64
	}
	tokens := make([]string, n)
	for i := range n {
		tokens[i] = benchToken(base + i) // minted before the clock starts
	}
	fmt.Println("minted")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return 1
	}
	clients := make([]*rawClient, n)
	var wg sync.WaitGroup
	var failed atomic.Int32
	next := atomic.Int64{}
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed.Load() != 0 {
					return
				}
				c, err := rawDial(wsURL, tokens[i])
				if err != nil {
					fmt.Fprintln(os.Stderr, "dial:", err)
					failed.Store(1)
					return
				}
				clients[i] = c
				if channel != "" {
					if err := c.sendText([]byte(`{"type":"subscribe","channel":"` + channel + `","id":1}`)); err != nil {
						failed.Store(1)
						return
					}
					if _, err := c.readFrame(); err != nil {
						fmt.Fprintln(os.Stderr, "subscribe:", err)
						failed.Store(1)
						return
					}
					go func() { _, _ = io.Copy(io.Discard, c.br) }()
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range clients {
		c.nc.Close()
	}
	return 0
}
