// SPDX-License-Identifier: MIT
//
// The Go reference for corio's cross-loop hand-offs (issue 14): the channel and worker-pool
// cases of handoff_corio.cpp with goroutines and Go's buffered channels, same flags, same JSON
// line. bench/handoff.sh builds and runs it with GOMAXPROCS set:
//
//	go build -o handoff_go bench/handoff_go.go
//	GOMAXPROCS=2 ./handoff_go --case channel --producers 4 --consumers 4
//	GOMAXPROCS=1 ./handoff_go --case pool --threads 1 --work-iters K
//
//	--case channel: P producer goroutines and C consumer goroutines on a chan int of
//	  `capacity` (Go decides where each goroutine runs: it has no loops to put them on).
//	--case pool: `threads` worker goroutines, each burning `work-iters` iterations of the busy
//	  loop of handoff_util.hpp per item received from a chan int of `pool-capacity`; the
//	  producer sends `items` then closes the channel. Run with GOMAXPROCS = threads.
//	--case calibrate: prints the iterations of the busy loop that take `work-us` here.
//
// The timed part follows an untimed warm-up, as in the C++ programs; cpu_s and the context
// switches come from getrusage (every thread of the process, the runtime's own included).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

type usage struct {
	wall        time.Time
	cpu         float64
	voluntary   int64
	involuntary int64
}

func snapshot() usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return usage{
		wall:        time.Now(),
		cpu:         float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)*1e-6,
		voluntary:   ru.Nvcsw,
		involuntary: ru.Nivcsw,
	}
}

type options struct {
	which                                      string
	producers, consumers, messages, capacity   int
	threads, items, workUs, workIters, poolCap int
}

func report(o *options, which string, threads, ops int, begin, end usage, extra string) {
	wall := end.wall.Sub(begin.wall).Seconds()
	fmt.Printf("{\"impl\":\"go\",\"case\":\"%s\",\"producers\":%d,\"consumers\":%d,"+
		"\"threads\":%d,\"ops\":%d,\"wall_s\":%.6f,\"cpu_s\":%.6f,\"per_s\":%.1f,"+
		"\"ns_per_op\":%.1f,\"vcsw\":%d,\"ivcsw\":%d,\"proc_cpu_s\":%.3f%s}\n",
		which, o.producers, o.consumers, threads, ops, wall, end.cpu-begin.cpu,
		float64(ops)/wall, wall*1e9/float64(ops), end.voluntary-begin.voluntary,
		end.involuntary-begin.involuntary, end.cpu, extra)
}

// --- channel -------------------------------------------------------------------------------

func pass(o *options, messages int) int64 {
	ch := make(chan int, o.capacity)
	sums := make([]int64, o.consumers)
	var wg sync.WaitGroup
	for c := 0; c < o.consumers; c++ {
		wg.Add(1)
		go func(c int, count int) {
			defer wg.Done()
			var sum int64
			for i := 0; i < count; i++ {
				sum += int64(<-ch)
			}
			sums[c] = sum
		}(c, messages/o.consumers)
	}
	for p := 0; p < o.producers; p++ {
		wg.Add(1)
		go func(count int) {
			defer wg.Done()
			for i := 0; i < count; i++ {
				ch <- i
			}
		}(messages / o.producers)
	}
	wg.Wait()
	var sum int64
	for _, s := range sums {
		sum += s
	}
	return sum
}

func channelCase(o *options) int {
	pc := o.producers * o.consumers
	pass(o, o.messages/10/pc*pc) // warm-up
	begin := snapshot()
	sum := pass(o, o.messages)
	end := snapshot()
	per := int64(o.messages / o.producers)
	if expected := int64(o.producers) * per * (per - 1) / 2; sum != expected {
		fmt.Fprintf(os.Stderr, "handoff_go: channel sum %d, expected %d\n", sum, expected)
		return 1
	}
	report(o, "channel", runtime.GOMAXPROCS(0), o.messages, begin, end, "")
	return 0
}

// --- worker pool ---------------------------------------------------------------------------

// burn is handoff_util.hpp's busy loop: a chain of dependent 64-bit multiplies and adds.
func burn(iters int, x uint64) uint64 {
	for i := 0; i < iters; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

// calibrate returns the iterations of burn that take us microseconds: the fastest of 20
// timings of 2^18 iterations.
func calibrate(us int) int {
	const n = 1 << 18
	best := 1e9
	var sink uint64
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		sink += burn(n, uint64(i))
		if d := time.Since(t0).Seconds(); d < best {
			best = d
		}
	}
	if sink == 42 {
		fmt.Fprint(os.Stderr, "")
	}
	if k := int(float64(us) * 1e-6 * n / best); k > 0 {
		return k
	}
	return 1
}

var checksum uint64 // keeps the busy loop's results

func poolPass(o *options, items, iters int) []int {
	ch := make(chan int, o.poolCap)
	perWorker := make([]int, o.threads)
	sums := make([]uint64, o.threads)
	var wg sync.WaitGroup
	for w := 0; w < o.threads; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			n := 0
			var sum uint64
			for item := range ch {
				sum += burn(iters, uint64(item))
				n++
			}
			perWorker[w] = n
			sums[w] = sum
		}(w)
	}
	for i := 0; i < items; i++ {
		ch <- i
	}
	close(ch)
	wg.Wait()
	for _, s := range sums {
		checksum += s
	}
	return perWorker
}

func poolCase(o *options) int {
	iters := o.workIters
	if iters == 0 {
		iters = calibrate(o.workUs)
	}
	poolPass(o, o.items/20+1, iters) // warm-up
	begin := snapshot()
	perWorker := poolPass(o, o.items, iters)
	end := snapshot()
	total := 0
	extra := fmt.Sprintf(",\"work_iters\":%d,\"per_worker\":[", iters)
	for i, n := range perWorker {
		total += n
		if i > 0 {
			extra += ","
		}
		extra += fmt.Sprint(n)
	}
	extra += "]"
	if total != o.items {
		fmt.Fprintf(os.Stderr, "handoff_go: the workers handled %d items of %d\n", total, o.items)
		return 1
	}
	report(o, "pool", runtime.GOMAXPROCS(0), o.items, begin, end, extra)
	return 0
}

func main() {
	var o options
	flag.StringVar(&o.which, "case", "channel", "channel, pool or calibrate")
	flag.IntVar(&o.producers, "producers", 1, "channel: producer goroutines")
	flag.IntVar(&o.consumers, "consumers", 1, "channel: consumer goroutines")
	flag.IntVar(&o.messages, "messages", 2000000, "channel: messages in all")
	flag.IntVar(&o.capacity, "capacity", 1024, "channel: the channel's capacity")
	flag.IntVar(&o.threads, "threads", 2, "pool: worker goroutines")
	flag.IntVar(&o.items, "items", 50000, "pool: items")
	flag.IntVar(&o.workUs, "work-us", 20, "pool: CPU work per item, for the calibration")
	flag.IntVar(&o.workIters, "work-iters", 0, "pool: busy-loop iterations per item (0: calibrate)")
	flag.IntVar(&o.poolCap, "pool-capacity", 256, "pool: the channel's capacity")
	flag.Parse()
	if o.producers < 1 || o.consumers < 1 || o.capacity < 1 || o.threads < 1 || o.poolCap < 1 ||
		o.messages%o.producers != 0 || o.messages%o.consumers != 0 {
		fmt.Fprintln(os.Stderr, "handoff_go: producers, consumers, capacities and threads must "+
			"be >= 1, and messages a multiple of producers and of consumers")
		os.Exit(2)
	}
	switch o.which {
	case "channel":
		os.Exit(channelCase(&o))
	case "pool":
		os.Exit(poolCase(&o))
	case "calibrate":
		fmt.Println(calibrate(o.workUs))
	default:
		fmt.Fprintf(os.Stderr, "handoff_go: unknown case %s (Go has channel, pool, calibrate)\n",
			o.which)
		os.Exit(2)
	}
}
