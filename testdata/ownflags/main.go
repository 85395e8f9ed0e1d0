// Command ownflags is run by TestGlogFlagClash: vflag fixed. Its flags live
// in a FlagSet of its own, so its -v never meets glog's; glog's flags are
// then off the command line, and -logs picks where lameduck's lines go:
// "glog" (glog's defaults: a file in $TMPDIR), "stderr" (glog's
// logtostderr, set in code) or "slog" (WithSlog; glog writes nothing).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/b583c413/lameduck"
)

func main() {
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	verbose := fs.Bool("v", false, "say more")
	logs := fs.String("logs", "glog", `where lameduck logs: "glog", "stderr" or "slog"`)
	_ = fs.Parse(os.Args[1:])
	if *verbose {
		fmt.Println("verbose")
	}

	var opts []lameduck.Option
	switch *logs {
	case "glog":
	case "stderr":
		_ = flag.Set("logtostderr", "true")
	case "slog":
		opts = append(opts, lameduck.WithSlog(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	default:
		fmt.Fprintf(os.Stderr, "unknown -logs %q\n", *logs)
		os.Exit(1)
	}
	// A batch with nothing to do: Run logs that it serves and returns nil.
	batch := lameduck.ServerFuncs{ServeFunc: func(context.Context) error { return nil }}
	os.Exit(lameduck.ExitCode(lameduck.Run(context.Background(), batch, opts...)))
}
