// SPDX-License-Identifier: Apache-2.0

// A Go HTTPS server and client (standard library only, HTTP/1.1) for test_tls_go.py: the agent
// reads their plaintext at crypto/tls.(*Conn).Write/Read.
//
//	peer_go_tls server PORT CERT KEY LOG   serves until killed; one line per request in LOG
//	peer_go_tls client PORT CAFILE PATH... prints "loaded", waits for a line on stdin, then
//	                                       GETs each PATH on one keep-alive connection and prints
//	                                       {"statuses": [...], "conns": N, "local_port": P}
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"sync"
)

func server(port, cert, key, logPath string) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		code := http.StatusOK
		if strings.HasPrefix(r.URL.Path, "/missing") {
			code = http.StatusNotFound
		}
		body := "go says hi\n"
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(code)
		io.WriteString(w, body)
		mu.Lock()
		fmt.Fprintf(logf, "%s %s %d\n", r.Method, r.URL.Path, code)
		mu.Unlock()
	})
	srv := &http.Server{
		Addr:    "127.0.0.1:" + port,
		Handler: h,
		// HTTP/1.1 only: no ALPN h2.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	fmt.Println("ready")
	if err := srv.ListenAndServeTLS(cert, key); err != nil {
		panic(err)
	}
}

func client(port, cafile string, paths []string) {
	pem, err := os.ReadFile(cafile)
	if err != nil {
		panic(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	c := &http.Client{Transport: tr}
	fmt.Println("loaded")
	bufio.NewReader(os.Stdin).ReadString('\n')
	conns, localPort := 0, 0
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			conns++
		}
		localPort = i.Conn.LocalAddr().(*net.TCPAddr).Port
	}}
	var statuses []int
	for _, p := range paths {
		req, err := http.NewRequestWithContext(
			httptrace.WithClientTrace(context.Background(), trace), "GET",
			"https://127.0.0.1:"+port+p, nil)
		if err != nil {
			panic(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			panic(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	out, _ := json.Marshal(map[string]any{"statuses": statuses, "conns": conns,
		"local_port": localPort})
	fmt.Println(string(out))
}

func main() {
	if len(os.Args) >= 6 && os.Args[1] == "server" {
		server(os.Args[2], os.Args[3], os.Args[4], os.Args[5])
	} else if len(os.Args) >= 4 && os.Args[1] == "client" {
		client(os.Args[2], os.Args[3], os.Args[4:])
	} else {
		fmt.Fprintln(os.Stderr, "usage: peer_go_tls server PORT CERT KEY LOG | client PORT CAFILE PATH...")
		os.Exit(2)
	}
}
