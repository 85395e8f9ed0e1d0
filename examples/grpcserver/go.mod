module github.com/b583c413/lameduck/examples/grpcserver

go 1.26.0

replace (
	github.com/b583c413/lameduck => ../..
	github.com/b583c413/lameduck/lameduckgrpc => ../../lameduckgrpc
)

require (
	github.com/b583c413/lameduck v0.0.0-00010101000000-000000000000
	github.com/b583c413/lameduck/lameduckgrpc v0.0.0-00010101000000-000000000000
	github.com/golang/glog v1.2.5
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)

require (
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
)
