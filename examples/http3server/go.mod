module github.com/b583c413/lameduck/examples/http3server

go 1.26.0

replace (
	github.com/b583c413/lameduck => ../..
	github.com/b583c413/lameduck/lameduckhttp3 => ../../lameduckhttp3
)

require (
	github.com/b583c413/lameduck v0.0.0-00010101000000-000000000000
	github.com/b583c413/lameduck/lameduckhttp3 v0.0.0-00010101000000-000000000000
	github.com/golang/glog v1.2.5
	github.com/quic-go/quic-go v0.65.0
)

require (
	github.com/quic-go/qpack v0.6.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/crypto v0.54.0 // indirect
	golang.org/x/net v0.56.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/text v0.40.0 // indirect
)
