package httpdrain

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// Only an HTTP/2 preface handed to the handler is taken for x/net's h2c
// handler: an Upgrade: h2c request is an HTTP/1 request that net/http and
// most handlers answer as one.
func TestH2CPrefaceDetection(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      bool
	}{
		{"prior knowledge preface", "PRI * HTTP/2.0\r\n\r\n", true},
		{"upgrade header", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", false},
		{"websocket upgrade", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false},
		{"plain request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.raw)))
			if err != nil {
				t.Fatal(err)
			}
			if got := isH2Preface(r); got != tc.want {
				t.Errorf("isH2Preface = %v, want %v", got, tc.want)
			}
		})
	}
}
