package lameduck

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRecipeLosesNoAcceptedJob runs the README's front-end + worker recipe
// exactly as written — a buffered jobs channel, FromWorker(ChanSource(jobs),
// process, Concurrency(4)), an HTTP front end that answers 202 once a job is
// queued, Group(worker, front) — on a real loopback socket under load, and
// stops it with SIGTERM 50 times. Every job answered 202 is processed,
// exactly once, and Run returns nil (rule 15 and the FromWorker helper).
func TestRecipeLosesNoAcceptedJob(t *testing.T) {
	rounds := 50
	if testing.Short() {
		rounds = 5
	}
	var accepted, lost int
	for round := range rounds {
		a, l := recipeRound(t, round)
		accepted += a
		lost += l
		if t.Failed() {
			break
		}
	}
	t.Logf("%d SIGTERMs: %d jobs accepted, %d lost", rounds, accepted, lost)
	if !testing.Short() && accepted < 1000 {
		t.Errorf("only %d jobs accepted across %d rounds; the load is too light to prove anything", accepted, rounds)
	}
}

// recipeRound runs the recipe once, stops it when at least minAccepted
// jobs were accepted, and returns how many were accepted and how many of
// those were never processed.
func recipeRound(t *testing.T, round int) (accepted, lost int) {
	t.Helper()
	const minAccepted = 30
	var (
		mu        sync.Mutex
		processed = map[int]int{}
		answered  []int // jobs the front end answered 202
	)
	enough := make(chan struct{})

	// The recipe, as in the README.
	jobs := make(chan int, 100)
	process := func(ctx context.Context, job int) error {
		time.Sleep(time.Millisecond) // the work; slower than the clients, so the buffer fills
		mu.Lock()
		processed[job]++
		mu.Unlock()
		return nil
	}
	enqueue := func(jobs chan<- int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			job, err := strconv.Atoi(r.URL.Query().Get("job"))
			if err != nil {
				http.Error(w, "no job", http.StatusBadRequest)
				return
			}
			jobs <- job
			w.WriteHeader(http.StatusAccepted)
		})
	}
	worker := FromWorker(ChanSource(jobs), process).Concurrency(4)
	front := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: enqueue(jobs)})
	h := runUntilReady(t, Group(worker, front), Period(30*time.Second))
	if front.Addr() == nil {
		t.Fatalf("round %d: the front end never bound: %v", round, <-h.done)
	}
	url := "http://" + front.Addr().String() + "/?job="

	var (
		next     atomic.Int64
		stopping atomic.Bool
		clients  sync.WaitGroup
	)
	transport := &http.Transport{MaxIdleConnsPerHost: 8}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	for range 8 {
		clients.Go(func() {
			for !stopping.Load() {
				job := int(next.Add(1))
				code, _, err := get(client, url+strconv.Itoa(job))
				if err != nil || code != http.StatusAccepted {
					continue // refused once the front end stops: not accepted
				}
				mu.Lock()
				answered = append(answered, job)
				if len(answered) == minAccepted {
					close(enough)
				}
				mu.Unlock()
			}
		})
	}
	select {
	case <-enough:
	case err := <-h.done:
		stopping.Store(true)
		clients.Wait()
		t.Fatalf("round %d: Run returned %v before any signal", round, err)
	}
	sendSignal(h)
	err := <-h.done
	stopping.Store(true)
	clients.Wait()

	if err != nil {
		t.Errorf("round %d: Run = %v, want nil", round, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, job := range answered {
		switch n := processed[job]; n {
		case 1:
		case 0:
			lost++
		default:
			t.Errorf("round %d: job %d processed %d times", round, job, n)
		}
	}
	if lost > 0 {
		t.Errorf("round %d: %d of %d accepted jobs were never processed (%d left in the channel)", round, lost, len(answered), len(jobs))
	}
	return len(answered), lost
}
