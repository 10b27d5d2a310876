package loadtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// wsConn is the load tool's own minimal WebSocket client (RFC 6455, client
// side, no extensions). A full client library costs several µs and a few
// allocations per received message; fanout reads 20,000–500,000 of them a
// second on one core, so a slow reader would show up as server latency.
// This one reads frames from one small buffer and allocates nothing per
// message. Writes (subscribe, pong, close reply) are rare and masked.
type wsConn struct {
	nc  net.Conn
	br  *bufio.Reader
	wmu sync.Mutex
	buf []byte // reassembled message, reused
}

// errClosed carries the code of the server's close frame.
type errClosed struct{ code int }

func (e errClosed) Error() string { return fmt.Sprintf("websocket closed with %d", e.code) }

// closeCode returns the close code of a read error, -1 when the socket
// ended without a close frame (as websocket.CloseStatus does).
func closeCode(err error) int {
	var ec errClosed
	if errors.As(err, &ec) {
		return ec.code
	}
	return -1
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// dialWS opens a socket to rawURL (ws://host:port/path) offering protocols.
func dialWS(ctx context.Context, d *net.Dialer, rawURL string, protocols []string) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("only ws:// URLs are supported by the raw client, not %q", u.Scheme)
	}
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	nc = withRxStamps(nc)
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	path := u.RequestURI()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n"
	if len(protocols) > 0 {
		req += "Sec-WebSocket-Protocol: " + strings.Join(protocols, ", ") + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
	status, err := br.ReadString('\n')
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	accept := ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if name, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "Sec-WebSocket-Accept") {
			accept = strings.TrimSpace(v)
		}
	}
	if f := strings.Fields(status); len(f) < 2 || f[1] != "101" {
		body := make([]byte, 200)
		n, _ := br.Read(body)
		nc.Close()
		return nil, fmt.Errorf("handshake refused: %s %s", strings.TrimSpace(status), strings.TrimSpace(string(body[:n])))
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if accept != base64.StdEncoding.EncodeToString(sum[:]) {
		nc.Close()
		return nil, errors.New("handshake: bad Sec-WebSocket-Accept")
	}
	_ = nc.SetDeadline(time.Time{})
	return &wsConn{nc: nc, br: br, buf: make([]byte, 0, 256)}, nil
}

// read returns the next data message (text or binary), answering pings and
// a close frame on the way. The message is valid until the next read.
func (c *wsConn) read() ([]byte, error) {
	c.buf = c.buf[:0]
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(c.br, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(c.br, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if h[1]&0x80 != 0 || n > 1<<20 {
			return nil, errors.New("bad frame from server (masked or over 1 MiB)")
		}
		if op >= 0x8 { // control frame, payload ≤ 125
			var p [125]byte
			if _, err := io.ReadFull(c.br, p[:n]); err != nil {
				return nil, err
			}
			switch op {
			case 0x9:
				if err := c.write(0xA, p[:n]); err != nil {
					return nil, err
				}
			case 0x8:
				code := 1005
				if n >= 2 {
					code = int(binary.BigEndian.Uint16(p[:2]))
				}
				_ = c.write(0x8, p[:min(n, 2)])
				return nil, errClosed{code}
			}
			continue
		}
		start := len(c.buf)
		c.buf = slices.Grow(c.buf, int(n))[:start+int(n)]
		if _, err := io.ReadFull(c.br, c.buf[start:]); err != nil {
			return nil, err
		}
		if fin {
			return c.buf, nil
		}
	}
}

// write sends one masked frame.
func (c *wsConn) write(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	f := make([]byte, 0, 14+len(p))
	f = append(f, 0x80|op)
	switch {
	case len(p) < 126:
		f = append(f, 0x80|byte(len(p)))
	case len(p) <= 0xffff:
		f = append(f, 0x80|126, byte(len(p)>>8), byte(len(p)))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(len(p)))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	f = append(f, mask[:]...)
	for i, b := range p {
		f = append(f, b^mask[i&3])
	}
	_, err := c.nc.Write(f)
	return err
}

// close ends the TCP connection at once (no close handshake).
func (c *wsConn) close() { _ = c.nc.Close() }
