module github.com/b583c413/lameduck/examples/upgrade

go 1.25

replace github.com/b583c413/lameduck => ../..

require (
	github.com/b583c413/lameduck v0.0.0-00010101000000-000000000000
	github.com/cloudflare/tableflip v1.2.3
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/golang/glog v1.2.5
	go.uber.org/goleak v1.3.0 // indirect
)

require golang.org/x/sys v0.1.0
