module github.com/b583c413/lameduck/examples/websocket

go 1.25

replace github.com/b583c413/lameduck => ../..

require (
	github.com/b583c413/lameduck v0.0.0-00010101000000-000000000000
	github.com/coder/websocket v1.8.15
	github.com/golang/glog v1.2.5
	github.com/gorilla/websocket v1.5.3
)

require go.uber.org/goleak v1.3.0 // indirect
