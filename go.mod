module github.com/b583c413/lameduck

go 1.25

require (
	github.com/golang/glog v1.2.5
	github.com/google/go-cmp v0.7.0
	go.uber.org/goleak v1.3.0
)
