// SPDX-License-Identifier: MIT
//
// Go's net/http server for the HTTP benchmarks (issue 5): GET /hello answering "Hello, World!"
// with the header fields corio sends (Server, Date, Content-Type, Content-Length). bench/http.sh
// runs it with GOMAXPROCS=1 (one thread runs Go code; the runtime keeps a few more).
//
//	go build -o http_go bench/http_go.go && GOMAXPROCS=1 ./http_go --port 8080
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	port := flag.Int("port", 8080, "port to listen on (127.0.0.1)")
	flag.Parse()
	hello := []byte("Hello, World!")
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/hello" {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h["Server"] = []string{"go"}
		h["Content-Type"] = []string{"text/plain; charset=utf-8"}
		w.Write(hello) // Go adds Date and Content-Length
	})
	addr := fmt.Sprintf("127.0.0.1:%d", *port)
	fmt.Fprintf(os.Stderr, "http_go: listening on %s\n", addr)
	log.Fatal(http.ListenAndServe(addr, mux))
}
