// Command fidelity-oracle runs Nomad-style service checks with Go's own
// net/http client and prints each verdict: the "Nomad" column of the
// fidelity matrix.
//
// It is written from the documented behaviour of Nomad's native checker
// (client/serviceregistration/checks), not from its code:
//   - one deadline, the check's timeout, covers the whole check: dial, TLS
//     handshake, request, redirects and the answer's head;
//   - the client is a pooled net/http client as go-cleanhttp builds it
//     (proxy from the environment, 30 s dial time-out and keep-alive, HTTP/2
//     attempted, 10 s TLS handshake time-out, 1 s Expect-Continue time-out)
//     with Go's default redirect policy (at most 10 requests);
//   - the URL is protocol://address:port with the check's path resolved
//     against it as a URL reference;
//   - the method as written, GET when empty; every header value of the
//     check is added; User-Agent defaults to
//     "Nomad/<version> (+https://www.nomadproject.io/; <go version>)";
//     the Host is the first Host value, else address:port;
//   - the body is set as a reader after the request is built, so Go sends a
//     non-empty body chunked and cannot replay it on a 307/308;
//   - a status of 200 passes, below 400 passes, anything else fails; the
//     body is not part of the verdict;
//   - tls_skip_verify turns certificate verification off;
//   - a tcp check passes when a connection opens within the timeout.
//
// Input on stdin: one JSON object per line (see Check). Output on stdout:
// one JSON object per line (see Result), in any order.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Check is one check to run, as the job spec declares it.
type Check struct {
	Name          string              `json:"name"`
	Type          string              `json:"type"`
	Address       string              `json:"address"`
	Protocol      string              `json:"protocol"`
	Method        string              `json:"method"`
	Path          string              `json:"path"`
	Headers       map[string][]string `json:"headers"`
	Body          string              `json:"body"`
	TimeoutMs     int64               `json:"timeout_ms"`
	TLSSkipVerify bool                `json:"tls_skip_verify"`
	NomadVersion  string              `json:"nomad_version"`
}

// Result is one verdict.
type Result struct {
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	Why     string `json:"why"`
	Status  int    `json:"status,omitempty"`
	Millis  int64  `json:"millis"`
}

func newClient(skipVerify bool) *http.Client {
	transport := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		MaxIdleConnsPerHost:   runtime.GOMAXPROCS(0) + 1,
	}
	if skipVerify {
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	return &http.Client{Transport: transport, Timeout: 10 * time.Minute}
}

func userAgent(version string) string {
	if version == "" {
		version = "2.0.0"
	}
	return fmt.Sprintf("Nomad/%s (+https://www.nomadproject.io/; %s)", version, runtime.Version())
}

func runTCP(ctx context.Context, c Check) Result {
	conn, err := new(net.Dialer).DialContext(ctx, "tcp", c.Address)
	if err != nil {
		return Result{Verdict: "fail", Why: err.Error()}
	}
	_ = conn.Close()
	return Result{Verdict: "pass", Why: "connected"}
}

func runHTTP(ctx context.Context, c Check, client *http.Client) Result {
	relative, err := url.Parse(c.Path)
	if err != nil {
		return Result{Verdict: "fail", Why: err.Error()}
	}
	protocol := c.Protocol
	if protocol == "" {
		protocol = "http"
	}
	method := c.Method
	if method == "" {
		method = http.MethodGet
	}
	base := url.URL{Scheme: protocol, Host: c.Address}
	target := base.ResolveReference(relative).String()
	request, err := http.NewRequest(method, target, nil)
	if err != nil {
		return Result{Verdict: "fail", Why: err.Error()}
	}
	for name, values := range c.Headers {
		for _, value := range values {
			request.Header.Add(name, value)
		}
	}
	if request.Header.Get("User-Agent") == "" {
		request.Header.Set("User-Agent", userAgent(c.NomadVersion))
	}
	request.Host = request.Header.Get("Host")
	request.Body = io.NopCloser(strings.NewReader(c.Body))
	request = request.WithContext(ctx)
	response, err := client.Do(request)
	if err != nil {
		return Result{Verdict: "fail", Why: shorten(err.Error())}
	}
	defer response.Body.Close()
	r := Result{Status: response.StatusCode, Why: response.Status}
	if response.StatusCode < 400 {
		r.Verdict = "pass"
	} else {
		r.Verdict = "fail"
	}
	return r
}

// shorten drops the request URL Go repeats in its errors, keeping the cause.
func shorten(text string) string {
	if i := strings.LastIndex(text, "\": "); i >= 0 {
		return text[i+3:]
	}
	return text
}

func run(c Check, clients map[bool]*http.Client) Result {
	timeout := time.Duration(c.TimeoutMs) * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	started := time.Now()
	var r Result
	if c.Type == "http" {
		r = runHTTP(ctx, c, clients[c.TLSSkipVerify])
	} else {
		r = runTCP(ctx, c)
	}
	r.Name = c.Name
	r.Millis = time.Since(started).Milliseconds()
	return r
}

func main() {
	clients := map[bool]*http.Client{false: newClient(false), true: newClient(true)}
	var checks []Check
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<24)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" {
			continue
		}
		var c Check
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			fmt.Fprintf(os.Stderr, "fidelity-oracle: bad input line: %v\n", err)
			os.Exit(2)
		}
		checks = append(checks, c)
	}
	if err := scanner.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "fidelity-oracle: reading stdin: %v\n", err)
		os.Exit(2)
	}
	results := make(chan Result, len(checks))
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Add(1)
		go func(c Check) {
			defer wg.Done()
			results <- run(c, clients)
		}(c)
	}
	wg.Wait()
	close(results)
	out := json.NewEncoder(os.Stdout)
	for r := range results {
		if err := out.Encode(r); err != nil {
			fmt.Fprintf(os.Stderr, "fidelity-oracle: writing: %v\n", err)
			os.Exit(2)
		}
	}
}
