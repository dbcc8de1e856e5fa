// Command secureclient drives sarama over TLS and SASL for tests/test_security_clients.py.
// It reads scenarios from stdin, one JSON object a line, plays each in turn and answers each
// with one JSON line on stdout, so one process serves every scenario (and the test can change
// the broker, granting an ACL say, between two of them).
//
// A scenario: {"scenario": name, "bootstrap": "host:port", "topic": t, "count": n,
// "produce_only": bool, "ca": ca.pem, "cert": c.pem, "key": c.key, "mechanism":
// "SCRAM-SHA-512"|"SCRAM-SHA-256"|"PLAIN", "user": u, "password": p}. With "produce_only" it
// produces COUNT records with acks=all; otherwise it also reads them back from the partition's
// oldest offset. The answer: {"scenario": name, "values": [...]} or {"scenario": name,
// "error": text, "kerror": Kafka error code or -1}, with "log": what sarama logged meanwhile
// (why it gave a broker up, a refused login say, is only in its log).
//
// sarama 1.22 speaks SCRAM through a client the caller supplies (Net.SASL.
// SCRAMClientGeneratorFunc); the one below follows RFC 5802 with the standard library.
package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

type scenario struct {
	Scenario    string `json:"scenario"`
	Bootstrap   string `json:"bootstrap"`
	Topic       string `json:"topic"`
	Count       int    `json:"count"`
	ProduceOnly bool   `json:"produce_only"`
	CA          string `json:"ca"`
	Cert        string `json:"cert"`
	Key         string `json:"key"`
	Mechanism   string `json:"mechanism"`
	User        string `json:"user"`
	Password    string `json:"password"`
}

type answer struct {
	Scenario string   `json:"scenario"`
	Values   []string `json:"values,omitempty"`
	Error    string   `json:"error,omitempty"`
	KError   int      `json:"kerror"`
	Log      string   `json:"log"`
}

// lockedBuffer collects sarama's log; its goroutines may still write after a scenario ends.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// scramClient is one SCRAM conversation (RFC 5802, no channel binding, as Kafka).
type scramClient struct {
	newHash     func() hash.Hash
	user, pass  string
	clientNonce string
	firstBare   string
	serverSig   []byte
	step        int
	done        bool
}

func (s *scramClient) Begin(user, password, authzID string) error {
	nonce := make([]byte, 18)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	s.user, s.pass = user, password
	s.clientNonce = base64.RawStdEncoding.EncodeToString(nonce)
	return nil
}

func escapeName(name string) string {
	return strings.ReplaceAll(strings.ReplaceAll(name, "=", "=3D"), ",", "=2C")
}

func (s *scramClient) mac(key []byte, text string) []byte {
	m := hmac.New(s.newHash, key)
	m.Write([]byte(text))
	return m.Sum(nil)
}

func (s *scramClient) Step(challenge string) (string, error) {
	s.step++
	switch s.step {
	case 1:
		s.firstBare = "n=" + escapeName(s.user) + ",r=" + s.clientNonce
		return "n,," + s.firstBare, nil
	case 2:
		attrs := map[string]string{}
		for _, part := range strings.Split(challenge, ",") {
			if len(part) > 2 && part[1] == '=' {
				attrs[part[:1]] = part[2:]
			}
		}
		nonce, saltText, iterText := attrs["r"], attrs["s"], attrs["i"]
		if !strings.HasPrefix(nonce, s.clientNonce) {
			return "", fmt.Errorf("server nonce does not extend the client's: %q", challenge)
		}
		salt, err := base64.StdEncoding.DecodeString(saltText)
		if err != nil {
			return "", err
		}
		iterations, err := strconv.Atoi(iterText)
		if err != nil {
			return "", err
		}
		size := s.newHash().Size()
		salted, err := pbkdf2.Key(s.newHash, s.pass, salt, iterations, size)
		if err != nil {
			return "", err
		}
		clientKey := s.mac(salted, "Client Key")
		h := s.newHash()
		h.Write(clientKey)
		storedKey := h.Sum(nil)
		withoutProof := "c=biws,r=" + nonce
		authMessage := s.firstBare + "," + challenge + "," + withoutProof
		signature := s.mac(storedKey, authMessage)
		proof := make([]byte, len(clientKey))
		for i := range clientKey {
			proof[i] = clientKey[i] ^ signature[i]
		}
		s.serverSig = s.mac(s.mac(salted, "Server Key"), authMessage)
		return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
	default:
		s.done = true
		if strings.HasPrefix(challenge, "e=") {
			return "", fmt.Errorf("server refused: %s", challenge[2:])
		}
		want := "v=" + base64.StdEncoding.EncodeToString(s.serverSig)
		if challenge != want {
			return "", fmt.Errorf("server signature does not verify: %q", challenge)
		}
		return "", nil
	}
}

func (s *scramClient) Done() bool { return s.done }

func config(s scenario) (*sarama.Config, error) {
	config := sarama.NewConfig()
	config.Version = sarama.V2_1_0_0
	config.ClientID = "headwater-go-secure"
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Return.Successes = true
	config.Producer.Partitioner = sarama.NewManualPartitioner
	config.Producer.Retry.Max = 1
	config.Metadata.Retry.Max = 1
	config.Metadata.Retry.Backoff = 100 * time.Millisecond
	config.Consumer.Return.Errors = true
	if s.CA != "" {
		pem, err := os.ReadFile(s.CA)
		if err != nil {
			return nil, fmt.Errorf("ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca: no certificate in %s", s.CA)
		}
		tlsConfig := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if s.Cert != "" {
			pair, err := tls.LoadX509KeyPair(s.Cert, s.Key)
			if err != nil {
				return nil, fmt.Errorf("client certificate: %v", err)
			}
			tlsConfig.Certificates = []tls.Certificate{pair}
		}
		config.Net.TLS.Enable = true
		config.Net.TLS.Config = tlsConfig
	}
	if s.Mechanism != "" {
		config.Net.SASL.Enable = true
		config.Net.SASL.Handshake = true
		config.Net.SASL.Mechanism = sarama.SASLMechanism(s.Mechanism)
		config.Net.SASL.User = s.User
		config.Net.SASL.Password = s.Password
		switch s.Mechanism {
		case sarama.SASLTypeSCRAMSHA512:
			config.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient {
				return &scramClient{newHash: sha512.New}
			}
		case sarama.SASLTypeSCRAMSHA256:
			config.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient {
				return &scramClient{newHash: sha256.New}
			}
		}
	}
	return config, nil
}

// play runs one scenario: the values read back, or the error the client reported.
func play(s scenario) ([]string, error) {
	config, err := config(s)
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient([]string{s.Bootstrap}, config)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return nil, err
	}
	var values []string
	for i := 0; i < s.Count; i++ {
		value := fmt.Sprintf("record-%d", i)
		_, _, err := producer.SendMessage(&sarama.ProducerMessage{
			Topic: s.Topic, Partition: 0, Value: sarama.StringEncoder(value),
		})
		if err != nil {
			producer.Close()
			return nil, err
		}
		values = append(values, value)
	}
	producer.Close()
	if s.ProduceOnly {
		return values, nil
	}

	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	partitions, err := consumer.Partitions(s.Topic)
	if err != nil {
		return nil, err
	}
	values = nil
	for _, partition := range partitions {
		pc, err := consumer.ConsumePartition(s.Topic, partition, sarama.OffsetOldest)
		if err != nil {
			return nil, err
		}
		timeout := time.After(30 * time.Second)
	read:
		for len(values) < s.Count {
			select {
			case msg := <-pc.Messages():
				values = append(values, string(msg.Value))
			case cerr := <-pc.Errors():
				pc.Close()
				return nil, cerr
			case <-timeout:
				break read
			}
		}
		pc.Close()
	}
	if len(values) != s.Count {
		return nil, fmt.Errorf("consumed %d of %d: %v", len(values), s.Count, values)
	}
	return values, nil
}

func main() {
	input := bufio.NewScanner(os.Stdin)
	input.Buffer(make([]byte, 1<<16), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for input.Scan() {
		var s scenario
		if err := json.Unmarshal(input.Bytes(), &s); err != nil {
			fmt.Fprintf(os.Stderr, "bad scenario %q: %v\n", input.Text(), err)
			os.Exit(2)
		}
		logged := &lockedBuffer{}
		sarama.Logger = log.New(logged, "[sarama] ", log.Lmicroseconds)
		values, err := play(s)
		result := answer{Scenario: s.Scenario, Values: values, KError: -1}
		if err != nil {
			result.Error = err.Error()
			if kerr, ok := err.(sarama.KError); ok {
				result.KError = int(kerr)
			}
		}
		result.Log = logged.String()
		if err := out.Encode(result); err != nil {
			os.Exit(3)
		}
	}
}
