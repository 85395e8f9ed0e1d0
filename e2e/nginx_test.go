package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/b583c413/lameduck/internal/proctest"
)

// nginxConfig is a front end as teams deploy nginx open source before a
// pool of instances: no active health checks, a pool of keep-alive
// connections to the instances (keepalive, HTTP/1.1, the client's
// Connection header not passed on), and the default proxy_next_upstream
// (error timeout), under which nginx resends a request to the next instance
// only when it knows the request was not sent: a GET that met a closed
// connection, never a POST. fail_timeout is 1s instead of 10s only so that
// an instance restarted on its address is back in rotation sooner; the
// race at the drain does not depend on it. X-Upstream says which instance
// answered.
const nginxConfig = `{{user}}
worker_processes 2;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log error;
daemon off;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path {{dir}}/body;
    proxy_temp_path {{dir}}/proxy;
    fastcgi_temp_path {{dir}}/fastcgi;
    uwsgi_temp_path {{dir}}/uwsgi;
    scgi_temp_path {{dir}}/scgi;
    upstream app {
{{servers}}        keepalive {{keepalive}};
    }
    server {
        listen {{front}} backlog=4096;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            add_header X-Upstream $upstream_addr always;
        }
    }
}
`

func nginxPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not installed: `apt-get install nginx`, or run `bash .ci/test`, which installs what apt-packages lists")
	}
	return path
}

// startNginx starts nginx in front of the instances at addrs and returns
// its base URL once it answers.
func startNginx(t *testing.T, path string, addrs []string, keepalive int) (front string, stop func()) {
	t.Helper()
	dir := t.TempDir()
	listen := freeAddrs(t, 1)[0]
	var servers strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&servers, "        server %s fail_timeout=1s;\n", a)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // the workers write the temp paths in dir
	}
	cfg := strings.NewReplacer("{{user}}", user, "{{dir}}", dir, "{{servers}}", servers.String(),
		"{{keepalive}}", fmt.Sprint(keepalive), "{{front}}", listen).Replace(nginxConfig)
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := proctest.Start(t, path, "-p", dir, "-c", file)
	deadline := time.Now().Add(bound)
	for {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s: %v", listen, err)
		}
		select {
		case <-p.Exited():
			code, _ := p.Wait()
			t.Fatalf("nginx exited with code %d", code)
		case <-time.After(10 * time.Millisecond): // polling a port nginx opens; nothing to wait on
		}
	}
	return "http://" + listen, func() {
		p.Term()
		p.Wait()
		// A refused connection is nginx finding an instance gone, which it
		// survives by trying the next; the other errors are the ones that
		// can lose a request.
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		var other []string
		for _, l := range strings.Split(string(log), "\n") {
			if l != "" && !strings.Contains(l, "(111: Connection refused)") {
				other = append(other, l)
			}
		}
		if len(other) > 0 {
			t.Logf("nginx error.log, %d errors other than a refused connection; the last:\n%s", len(other), strings.Join(other[max(len(other)-10, 0):], "\n"))
		}
	}
}
