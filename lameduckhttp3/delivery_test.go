package lameduckhttp3

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

// The delivery oracle checks, from the outside and with quic-go's own
// client, what the package promises: Run returns nil only if every
// response whose handler returned reached its client whole. A response cut
// short is allowed only when Run returned an error. Requests that never
// reached a handler (refused after the GOAWAY) do not count.
//
// Each case is one cell of a matrix (response size × reader × the moment
// the drain begins) with seeded details, on a server and a client of its
// own. The default run does every cell and then more at random, 1 000
// cases; -delivery.n runs more. The seed fixes the plan, not the scheduler.

var (
	deliveryN        = flag.Int("delivery.n", 0, "delivery oracle: number of cases (0: 1 000, or 96 with -short)")
	deliverySeed     = flag.Uint64("delivery.seed", 0, "delivery oracle: seed of the case details (0: from the clock)")
	deliveryParallel = flag.Int("delivery.parallel", 32, "delivery oracle: cases run at once")
	deliveryCell     = flag.String("delivery.cell", "", "delivery oracle: run only the planned cases whose cell (size/reader/moment) matches this regexp")
)

// deliveryPeriod lets every reader but the staller finish: the slowest
// reads 1 MiB at 0.75 MB/s (1.4 s).
const deliveryPeriod = 3 * time.Second

type sizeKind int

const (
	size0   sizeKind = iota // an empty body
	size1K                  // 1 KiB, which quic-go sends with the headers
	size64K                 // 64 KiB in 16 KiB writes
	size1M                  // 1 MiB in 16 KiB writes
)

type readerKind int

const (
	readFast  readerKind = iota
	readSlow             // 0.75 to 1.5 MB/s from the body
	readStall            // reads nothing once the drain has begun, until Run has returned
)

type stopMoment int

const (
	stopBeforeWrite stopMoment = iota // the handler has begun; it writes once the drain has begun
	stopMidBody                       // half the body is flushed; the rest comes once the drain has begun
	stopAfterReturn                   // the handler has just returned
	stopIdle                          // the connection is idle; the request is sent once the drain has begun
)

var (
	sizeNames   = []string{"0B", "1KiB", "64KiB", "1MiB"}
	readerNames = []string{"fast", "slow", "staller"}
	stopNames   = []string{"before-write", "mid-body", "after-return", "idle"}
)

// deliveryCase is one cell of the matrix with its seeded details.
type deliveryCase struct {
	size   sizeKind
	reader readerKind
	stop   stopMoment

	seed        uint64 // of the body's bytes
	rate        int    // bytes a second, for the slow reader
	smallWindow bool   // the client's stream receive window is 64 KiB: the server's writes block on it
}

func (c deliveryCase) cell() string {
	return fmt.Sprintf("%s/%s/%s", sizeNames[c.size], readerNames[c.reader], stopNames[c.stop])
}

func (c deliveryCase) details() string {
	d := fmt.Sprintf("rate %.2f MB/s", float64(c.rate)/1e6)
	if c.smallWindow {
		d += ", 64 KiB receive window"
	}
	return d
}

// planDelivery returns n cases: every cell once (in a seeded order) while n
// allows, then cells at random.
func planDelivery(seed uint64, n int) []deliveryCase {
	rng := rand.New(rand.NewPCG(seed, 0x4833))
	var cells []deliveryCase
	for s := range sizeKind(len(sizeNames)) {
		for r := range readerKind(len(readerNames)) {
			for m := range stopMoment(len(stopNames)) {
				cells = append(cells, deliveryCase{size: s, reader: r, stop: m})
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
		c.seed = rng.Uint64()
		c.rate = 750_000 + rng.IntN(750_000)
		c.smallWindow = rng.IntN(2) == 0
		cases[i] = c
	}
	return cases
}

func TestDelivery(t *testing.T) {
	n := *deliveryN
	if n == 0 {
		n = 1000
		if testing.Short() {
			n = 96
		}
	}
	seed := *deliverySeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	cell, err := regexp.Compile(*deliveryCell)
	if err != nil {
		t.Fatalf("-delivery.cell: %v", err)
	}
	tally := &deliveryTally{cases: map[string]int{}, outcomes: map[string]int{}}
	sem := make(chan struct{}, max(1, *deliveryParallel))
	var wg sync.WaitGroup
	for i, c := range planDelivery(seed, n) {
		if !cell.MatchString(c.cell()) {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// t.Run from several goroutines runs the cases at once,
			// bounded by sem rather than by -parallel.
			t.Run(fmt.Sprintf("%04d:%s", i, c.cell()), func(t *testing.T) {
				out := runDeliveryCase(t, c)
				if out.silentCut != "" {
					t.Errorf("silent cut: Run returned nil, but %s [%s]", out.silentCut, c.details())
				}
				if out.uncounted != "" {
					t.Errorf("uncounted cut: %s [%s]", out.uncounted, c.details())
				}
				tally.add(c, out)
			})
		})
	}
	wg.Wait()
	if silent := tally.outcomes["silent cut"]; silent > 0 {
		t.Errorf("%d silent cuts in %d cases", silent, tally.total)
	}
	// A drain that expires although no staller held it is slow, not
	// wrong; on a loaded machine one in a while is. Many are not.
	if slow, of := tally.outcomes["expired without a staller"], tally.total-tally.stallers; slow > max(1, of/50) {
		t.Errorf("%d of %d cases without a staller expired, want at most %d", slow, of, max(1, of/50))
	}
	t.Logf("%d cases, seed %d (rerun: -run 'TestDelivery$' -delivery.seed=%d -delivery.n=%d):\n%s", tally.total, seed, seed, n, tally)
}

// deliveryTally counts the cases' outcomes.
type deliveryTally struct {
	mu              sync.Mutex
	total, stallers int
	cases           map[string]int // cell → cases run
	outcomes        map[string]int // outcome, and cell + " " + outcome → cases
}

func (t *deliveryTally) add(c deliveryCase, out deliveryOutcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total++
	if c.reader == readStall {
		t.stallers++
	}
	t.cases[c.cell()]++
	for _, o := range out.kinds() {
		t.outcomes[o]++
		t.outcomes[c.cell()+" "+o]++
	}
}

// String gives the totals, then the outcomes by cell.
func (t *deliveryTally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var totals, cells []string
	for key, n := range t.outcomes {
		if cell, o, ok := strings.Cut(key, " "); ok && strings.Count(cell, "/") == 2 {
			cells = append(cells, fmt.Sprintf("  %-30s %s: %d of %d", cell, o, n, t.cases[cell]))
		} else {
			totals = append(totals, fmt.Sprintf("  %s: %d of %d", key, n, t.total))
		}
	}
	slices.Sort(totals)
	slices.Sort(cells)
	return "totals:\n" + strings.Join(totals, "\n") + "\nby cell:\n" + strings.Join(cells, "\n")
}
