// Command secureclient drives sarama over TLS and SASL: it produces COUNT records with
// acks=all, reads them back from the partition's oldest offset and prints
// "produced=N consumed=N". An authentication failure is printed as "error: ..." with exit
// status 1.
//
// sarama 1.22 speaks SCRAM through a client the caller supplies (Net.SASL.
// SCRAMClientGeneratorFunc); the one below follows RFC 5802 with the standard library.
//
// Usage: secureclient -bootstrap HOST:PORT -topic T -count N [-ca ca.pem] [-cert c.pem
// -key c.key] [-mechanism SCRAM-SHA-512|SCRAM-SHA-256|PLAIN -user U -password P]
package main

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"flag"
	"fmt"
	"hash"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/Shopify/sarama"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("error: "+format+"\n", args...)
	os.Exit(1)
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

func main() {
	bootstrap := flag.String("bootstrap", "", "host:port")
	topic := flag.String("topic", "", "topic")
	count := flag.Int("count", 3, "records to produce")
	ca := flag.String("ca", "", "CA certificates (PEM): enables TLS")
	cert := flag.String("cert", "", "client certificate (PEM)")
	key := flag.String("key", "", "client key (PEM)")
	mechanism := flag.String("mechanism", "", "SASL mechanism: enables SASL")
	user := flag.String("user", "", "SASL user")
	password := flag.String("password", "", "SASL password")
	flag.Parse()
	// sarama reports why a broker was given up on (a refused login, say) only in its log.
	sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)

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
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			fail("ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fail("ca: no certificate in %s", *ca)
		}
		tlsConfig := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if *cert != "" {
			pair, err := tls.LoadX509KeyPair(*cert, *key)
			if err != nil {
				fail("client certificate: %v", err)
			}
			tlsConfig.Certificates = []tls.Certificate{pair}
		}
		config.Net.TLS.Enable = true
		config.Net.TLS.Config = tlsConfig
	}
	if *mechanism != "" {
		config.Net.SASL.Enable = true
		config.Net.SASL.Handshake = true
		config.Net.SASL.Mechanism = sarama.SASLMechanism(*mechanism)
		config.Net.SASL.User = *user
		config.Net.SASL.Password = *password
		switch *mechanism {
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

	client, err := sarama.NewClient([]string{*bootstrap}, config)
	if err != nil {
		fail("client: %v", err)
	}
	defer client.Close()
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		fail("producer: %v", err)
	}
	for i := 0; i < *count; i++ {
		_, _, err := producer.SendMessage(&sarama.ProducerMessage{
			Topic: *topic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprintf("record-%d", i)),
		})
		if err != nil {
			fail("produce: %v", err)
		}
	}
	producer.Close()

	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		fail("consumer: %v", err)
	}
	partitions, err := consumer.Partitions(*topic)
	if err != nil {
		fail("partitions: %v", err)
	}
	var values []string
	for _, partition := range partitions {
		pc, err := consumer.ConsumePartition(*topic, partition, sarama.OffsetOldest)
		if err != nil {
			fail("consume: %v", err)
		}
		timeout := time.After(30 * time.Second)
	read:
		for len(values) < *count {
			select {
			case msg := <-pc.Messages():
				values = append(values, string(msg.Value))
			case cerr := <-pc.Errors():
				fail("consume: %v", cerr)
			case <-timeout:
				break read
			}
		}
		pc.Close()
	}
	consumer.Close()
	fmt.Printf("produced=%d consumed=%d values=%s\n", *count, len(values), strings.Join(values, ","))
	if len(values) != *count {
		os.Exit(1)
	}
}
