package lameduck

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The delivery oracle checks rule 15 from the outside, over real loopback
// sockets: Run returns nil only if every response whose handler returned
// reached its client whole. A response cut short is allowed only when Run
// returned a *LameDuckError (Close was called). Requests that never reached
// a handler do not count.
//
// Each case is one cell of a matrix (protocol × client × response × the
// moment the drain is triggered) with seeded details. The default run does
// every cell once and some more at random; -delivery.n runs thousands. The
// seed fixes the plan (cells, order, details), not the scheduler: a failure
// that depends on a race may take a few reruns of its seed and cell.

var (
	deliveryN        = flag.Int("delivery.n", 0, "delivery oracle: number of cases (0: every cell of the matrix and some more, a few hundred)")
	deliverySeed     = flag.Uint64("delivery.seed", 0, "delivery oracle: seed of the case details (0: from the clock)")
	deliveryParallel = flag.Int("delivery.parallel", 16, "delivery oracle: cases run at once")
	deliveryCell     = flag.String("delivery.cell", "", "delivery oracle: run only the planned cases whose cell (proto/client/response/moment) matches this regexp")
)

// deliveryPeriod lets every client but the staller finish: the slowest reads
// 512 KiB at 0.75 MB/s (0.7 s).
const deliveryPeriod = 2 * time.Second

type wireProto int

const (
	wireHTTP1    wireProto = iota // HTTP/1.1 over TCP
	wireHTTP1TLS                  // HTTP/1.1 over TLS (the client offers only http/1.1)
	wireH2TLS                     // HTTP/2 over TLS
	wireH2C                       // HTTP/2 with prior knowledge, enabled by srv.Protocols
)

type readerKind int

const (
	readFast       readerKind = iota
	readSlowSocket            // ~1 MB/s at the socket, with a small receive buffer
	readSlowApp               // ~1 MB/s from the response body
	readStall                 // reads at once until the trigger, then nothing until Run has returned
)

type bodyKind int

const (
	bodySmall    bodyKind = iota // 1 KiB in two writes, with Content-Length
	bodyLarge                    // 512 KiB in 32 KiB writes, with Content-Length
	bodyStreamed                 // 30 chunks of 16 KiB, flushed one by one over ~300 ms
)

type stopMoment int

const (
	stopBeforeWrite stopMoment = iota // the handler has started and writes only once the drain has begun
	stopMidBody                       // half the body is flushed; the rest is written once the drain has begun
	stopAfterReturn                   // the handler has just returned
	stopIdle                          // a keep-alive connection is idle; the request is sent after the trigger
)

var (
	wireNames   = []string{"http1", "http1-tls", "h2-tls", "h2c"}
	readerNames = []string{"fast", "slow-socket", "slow-app", "staller"}
	bodyNames   = []string{"small", "512KiB", "streamed"}
	stopNames   = []string{"before-write", "mid-body", "after-return", "idle"}
)

// deliveryCase is one cell of the matrix with its seeded details.
type deliveryCase struct {
	proto  wireProto
	reader readerKind
	body   bodyKind
	stop   stopMoment

	rate      int  // bytes a second, for the slow readers
	late      bool // stopIdle: the request is sent only once the drain has begun
	smallSend bool // the server's send buffer is small (always for the staller)
}

// cell names the matrix cell, as failure messages do.
func (c deliveryCase) cell() string {
	return fmt.Sprintf("%s/%s/%s/%s", wireNames[c.proto], readerNames[c.reader], bodyNames[c.body], stopNames[c.stop])
}

// details says how the case varies within its cell.
func (c deliveryCase) details() string {
	d := fmt.Sprintf("rate %.2f MB/s", float64(c.rate)/1e6)
	if c.smallSend {
		d += ", small server send buffer"
	}
	if c.stop == stopIdle && c.late {
		d += ", sent once the drain began"
	}
	return d
}

// planDelivery returns n cases: every cell once (in a seeded order) while n
// allows, then cells at random.
func planDelivery(seed uint64, n int) []deliveryCase {
	rng := rand.New(rand.NewPCG(seed, 0x1a3ed0c))
	var cells []deliveryCase
	for p := range wireProto(len(wireNames)) {
		for r := range readerKind(len(readerNames)) {
			for b := range bodyKind(len(bodyNames)) {
				for s := range stopMoment(len(stopNames)) {
					cells = append(cells, deliveryCase{proto: p, reader: r, body: b, stop: s})
				}
			}
		}
	}
	rng.Shuffle(len(cells), func(i, j int) { cells[i], cells[j] = cells[j], cells[i] })
	cases := make([]deliveryCase, n)
	for i := range cases {
		c := cells[rng.IntN(len(cells))]
		if i < len(cells) {
			c = cells[i]
		}
		c.rate = 750_000 + rng.IntN(750_000)
		c.late = rng.IntN(2) == 0
		c.smallSend = c.reader == readStall || rng.IntN(2) == 0
		cases[i] = c
	}
	return cases
}

func TestDelivery(t *testing.T) {
	n := *deliveryN
	if n == 0 {
		n = 288
		if testing.Short() {
			n = 48
		}
	}
	seed := *deliverySeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	cert, pool := selfSigned(t)
	env := deliveryEnv{cert: cert, pool: pool}
	tally := &deliveryTally{cases: map[string]int{}, faults: map[string]int{}}

	cell, err := regexp.Compile(*deliveryCell)
	if err != nil {
		t.Fatalf("-delivery.cell: %v", err)
	}
	cases := planDelivery(seed, n)
	sem := make(chan struct{}, max(1, *deliveryParallel))
	var wg sync.WaitGroup
	for i, c := range cases {
		if !cell.MatchString(c.cell()) {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// t.Run from several goroutines runs the cases at once,
			// bounded by sem rather than by -parallel.
			t.Run(fmt.Sprintf("%03d:%s", i, c.cell()), func(t *testing.T) {
				faults := runDeliveryCase(t, env, c)
				for _, f := range faults {
					if f.kind == faultSlow {
						t.Logf("%s: %s [%s]", c.cell(), f.msg, c.details())
					} else {
						t.Errorf("%s: %s [%s]", c.cell(), f.msg, c.details())
					}
				}
				tally.add(c, faults)
			})
		})
	}
	wg.Wait()
	// A drain that expires for a client that reads in time is slow, not
	// wrong; on a loaded machine one in a while is. Many are not.
	if slow, of := tally.slow(); slow > max(1, of/50) {
		t.Errorf("%d of %d cases without a staller expired, want at most %d", slow, of, max(1, of/50))
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("faults by cell (kind: cases with it of cases run):\n%s", tally)
		t.Logf("seed %d: rerun with -run 'TestDelivery$' -delivery.seed=%d -delivery.n=%d (add -delivery.cell='^CELL$' for one cell)", seed, seed, n)
	}
}

// deliveryFault is one way a case broke the rule; kind groups them in the
// tally.
type deliveryFault struct {
	kind string
	msg  string
}

// faultSlow is the kind of fault of a drain that expired although every
// client read in time: counted, but failing the test only in numbers.
const faultSlow = "expired"

type deliveryTally struct {
	mu     sync.Mutex
	cases  map[string]int // cell → cases run
	faults map[string]int // cell + " " + kind → cases with that fault

	slowCases, noStaller int // cases with faultSlow, of the cases without a staller
}

func (t *deliveryTally) slow() (n, of int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.slowCases, t.noStaller
}

func (t *deliveryTally) add(c deliveryCase, faults []deliveryFault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cases[c.cell()]++
	if c.reader != readStall {
		t.noStaller++
	}
	seen := map[string]bool{}
	for _, f := range faults {
		if !seen[f.kind] {
			seen[f.kind] = true
			t.faults[c.cell()+" "+f.kind]++
			if f.kind == faultSlow {
				t.slowCases++
			}
		}
	}
}

// String lists the faults by cell, then totals by protocol.
func (t *deliveryTally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	protoCases, protoFaults := map[string]int{}, map[string]int{}
	for cell, n := range t.cases {
		proto, _, _ := strings.Cut(cell, "/")
		protoCases[proto] += n
	}
	var lines, totals []string
	for key, n := range t.faults {
		cell, kind, _ := strings.Cut(key, " ")
		lines = append(lines, fmt.Sprintf("  %-42s %s: %d of %d", cell, kind, n, t.cases[cell]))
		proto, _, _ := strings.Cut(cell, "/")
		protoFaults[proto+" "+kind] += n
	}
	for key, n := range protoFaults {
		proto, kind, _ := strings.Cut(key, " ")
		totals = append(totals, fmt.Sprintf("  %-10s %s: %d of %d cases", proto, kind, n, protoCases[proto]))
	}
	slices.Sort(lines)
	slices.Sort(totals)
	return strings.Join(lines, "\n") + "\ntotals:\n" + strings.Join(totals, "\n")
}
