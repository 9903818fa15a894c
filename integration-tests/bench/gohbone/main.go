// gohbone: a pair of HBONE peers built on Go's x/net/http2, the yardstick the ztunnel benchmark
// compares our two ztunnels with (ztunnel-bench.sh builds and runs it; see README.md there).
//
//	gohbone client -peer ADDR -cert F -key F -ca F LISTEN=TARGET...
//	    listens on each LISTEN in plain TCP; per accepted connection opens an HTTP/2 CONNECT
//	    stream to TARGET over mutual TLS 1.3 to the peer and relays both ways.
//	gohbone server -listen ADDR -source IP -cert F -key F -ca F
//	    mutual TLS 1.3 listener (a client certificate signed by the CA is required), accepts
//	    CONNECT, dials :authority from -source, answers 200 and relays both ways.
//
// Windows and frame size match what our HBONE connections announce (4 MiB per stream, 16 MiB per
// connection, 1 MiB frames), so both pairs get the same chance. It is a benchmark tool, not a
// proxy: no policy, no limits beyond x/net's defaults.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"

	"golang.org/x/net/http2"
)

const copyBuffer = 64 << 10

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: gohbone client|server [flags]")
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	cert := flags.String("cert", "", "certificate chain (PEM)")
	key := flags.String("key", "", "private key (PEM)")
	ca := flags.String("ca", "", "root certificate the peer's chain must reach (PEM)")
	peer := flags.String("peer", "", "client: the server peer's address (host:port)")
	listen := flags.String("listen", "", "server: address to listen on (host:port)")
	source := flags.String("source", "", "server: source IP for dialled targets")
	_ = flags.Parse(os.Args[2:])
	tlsConfig := mutualTLS(*cert, *key, *ca)
	switch os.Args[1] {
	case "client":
		runClient(tlsConfig, *peer, flags.Args())
	case "server":
		runServer(tlsConfig, *listen, *source)
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
}

func mutualTLS(certFile, keyFile, caFile string) *tls.Config {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		log.Fatalf("key pair: %v", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		log.Fatalf("root: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		log.Fatalf("no certificate in %s", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{"h2"},
		RootCAs:      roots,
		ClientCAs:    roots,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		// SPIFFE certificates name no host: check the chain, not a name (as our ztunnels do
		// before they check the SPIFFE identity, which this tool does not).
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(raw, roots)
		},
	}
}

func verifyChain(raw [][]byte, roots *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("no certificate")
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, r := range raw[1:] {
		if c, err := x509.ParseCertificate(r); err == nil {
			inter.AddCert(c)
		}
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

// ---- client side ----

type tunnelClient struct {
	transport *http2.Transport
	tls       *tls.Config
	peer      string
	mu        sync.Mutex
	conns     []*http2.ClientConn
}

func runClient(tlsConfig *tls.Config, peer string, maps []string) {
	if peer == "" || len(maps) == 0 {
		log.Fatal("client needs -peer and at least one LISTEN=TARGET")
	}
	c := &tunnelClient{transport: &http2.Transport{MaxReadFrameSize: 1 << 20}, tls: tlsConfig, peer: peer}
	var wg sync.WaitGroup
	for _, m := range maps {
		listenAddr, target, ok := strings.Cut(m, "=")
		if !ok {
			log.Fatalf("not LISTEN=TARGET: %q", m)
		}
		l, err := net.Listen("tcp", listenAddr)
		if err != nil {
			log.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				conn, err := l.Accept()
				if err != nil {
					log.Print(err)
					return
				}
				go c.tunnel(conn.(*net.TCPConn), target)
			}
		}()
	}
	log.Printf("client ready, peer %s", peer)
	wg.Wait()
}

// conn returns a pooled HTTP/2 connection to the peer that takes one more stream, dialling one
// if none does.
func (c *tunnelClient) conn() (*http2.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	live := c.conns[:0]
	for _, cc := range c.conns {
		if cc.State().Closed {
			continue
		}
		live = append(live, cc)
	}
	c.conns = live
	for _, cc := range c.conns {
		if cc.ReserveNewRequest() {
			return cc, nil
		}
	}
	raw, err := tls.Dial("tcp", c.peer, c.tls)
	if err != nil {
		return nil, err
	}
	cc, err := c.transport.NewClientConn(raw)
	if err != nil {
		raw.Close()
		return nil, err
	}
	c.conns = append(c.conns, cc)
	if !cc.ReserveNewRequest() {
		return nil, errors.New("new connection takes no stream")
	}
	return cc, nil
}

func (c *tunnelClient) tunnel(conn *net.TCPConn, target string) {
	defer conn.Close()
	cc, err := c.conn()
	if err != nil {
		log.Printf("peer: %v", err)
		return
	}
	body, upload := io.Pipe()
	req, _ := http.NewRequest(http.MethodConnect, "https://"+target, body)
	req.Host = target
	req.ContentLength = -1
	resp, err := cc.RoundTrip(req)
	if err != nil {
		upload.CloseWithError(err)
		log.Printf("CONNECT %s: %v", target, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		upload.Close()
		log.Printf("CONNECT %s: %s", target, resp.Status)
		return
	}
	done := make(chan struct{})
	go func() {
		buf := make([]byte, copyBuffer)
		_, err := io.CopyBuffer(upload, conn, buf)
		upload.CloseWithError(err) // END_STREAM after the client's FIN
		close(done)
	}()
	buf := make([]byte, copyBuffer)
	_, _ = io.CopyBuffer(conn, resp.Body, buf)
	_ = conn.CloseWrite()
	<-done
}

// ---- server side ----

func runServer(tlsConfig *tls.Config, listenAddr, source string) {
	if listenAddr == "" {
		log.Fatal("server needs -listen")
	}
	dialer := &net.Dialer{}
	if source != "" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	h2 := &http2.Server{
		MaxReadFrameSize:             1 << 20,
		MaxUploadBufferPerStream:     4 << 20,
		MaxUploadBufferPerConnection: 16 << 20,
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveConnect(w, r, dialer)
	})
	l, err := tls.Listen("tcp", listenAddr, tlsConfig)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("server ready on %s", listenAddr)
	for {
		conn, err := l.Accept()
		if err != nil {
			log.Print(err)
			continue
		}
		go func() {
			tc := conn.(*tls.Conn)
			if err := tc.Handshake(); err != nil {
				log.Printf("handshake: %v", err)
				tc.Close()
				return
			}
			if tc.ConnectionState().NegotiatedProtocol != "h2" {
				tc.Close()
				return
			}
			h2.ServeConn(tc, &http2.ServeConnOpts{Handler: handler})
		}()
	}
}

func serveConnect(w http.ResponseWriter, r *http.Request, dialer *net.Dialer) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	target, err := dialer.Dial("tcp", r.Host)
	if err != nil {
		http.Error(w, fmt.Sprintf("dial %s: %v", r.Host, err), http.StatusServiceUnavailable)
		return
	}
	defer target.Close()
	w.WriteHeader(http.StatusOK)
	flusher := w.(http.Flusher)
	flusher.Flush()
	done := make(chan struct{})
	go func() {
		buf := make([]byte, copyBuffer)
		_, _ = io.CopyBuffer(target, r.Body, buf)
		_ = target.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	buf := make([]byte, copyBuffer)
	for {
		n, err := target.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				break
			}
			flusher.Flush()
		}
		if err != nil {
			break
		}
	}
	<-done
}
