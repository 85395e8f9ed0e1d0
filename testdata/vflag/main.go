// Command vflag is run by TestGlogFlagClash: a program with a -v flag of
// its own on the default flag set, as many programs have. Importing lameduck
// brings in glog, which has already registered -v there, so the program
// panics before main runs, whatever logger it would have chosen.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/b583c413/lameduck"
)

var verbose = flag.Bool("v", false, "say more")

func main() {
	flag.Parse()
	if *verbose {
		fmt.Println("verbose")
	}
	batch := lameduck.ServerFuncs{ServeFunc: func(context.Context) error { return nil }}
	os.Exit(lameduck.ExitCode(lameduck.Run(context.Background(), batch, lameduck.WithoutLogger())))
}
