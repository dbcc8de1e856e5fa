// Command goclient exercises the broker with the pure-Go sarama client: it produces keyed
// messages with acks=all (optionally with sarama's idempotent producer), then consumes them
// back in a consumer group and checks per-key order.
//
// Usage: goclient BOOTSTRAP TOPIC COUNT [idempotent]
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

type handler struct {
	mu       sync.Mutex
	seen     int
	want     int
	lastSeq  map[string]int
	disorder int
	done     chan struct{}
	once     sync.Once
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		seq, err := strconv.Atoi(string(msg.Value))
		if err != nil {
			return err
		}
		h.mu.Lock()
		key := string(msg.Key)
		if last, ok := h.lastSeq[key]; ok && seq <= last {
			h.disorder++
		}
		h.lastSeq[key] = seq
		h.seen++
		if h.seen >= h.want {
			h.once.Do(func() { close(h.done) })
		}
		h.mu.Unlock()
		s.MarkMessage(msg, "")
	}
	return nil
}

func main() {
	if len(os.Args) != 4 && !(len(os.Args) == 5 && os.Args[4] == "idempotent") {
		fail("usage: goclient BOOTSTRAP TOPIC COUNT [idempotent]")
	}
	bootstrap, topic := os.Args[1], os.Args[2]
	count, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fail("bad count: %v", err)
	}
	config := sarama.NewConfig()
	config.Version = sarama.V2_1_0_0
	config.ClientID = "headwater-go-test"
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Return.Successes = true
	config.Producer.Partitioner = sarama.NewHashPartitioner
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	// With a retention set, sarama commits with OffsetCommit v2; without it, v1, which Kafka
	// 4.0 (KIP-896) and headwater no longer accept.
	config.Consumer.Offsets.Retention = 24 * time.Hour
	config.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	config.Consumer.Group.Rebalance.Strategy = sarama.BalanceStrategyRange
	if len(os.Args) == 5 {
		// What sarama itself requires of an idempotent producer, nothing more.
		config.Producer.Idempotent = true
		config.Net.MaxOpenRequests = 1
	}

	producer, err := sarama.NewSyncProducer([]string{bootstrap}, config)
	if err != nil {
		fail("producer: %v", err)
	}
	var batch []*sarama.ProducerMessage
	for i := 0; i < count; i++ {
		key := fmt.Sprintf("key-%d", i%10)
		batch = append(batch, &sarama.ProducerMessage{
			Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(strconv.Itoa(i)),
		})
	}
	if err := producer.SendMessages(batch); err != nil {
		fail("produce: %v", err)
	}
	producer.Close()

	group, err := sarama.NewConsumerGroup([]string{bootstrap}, "go-group", config)
	if err != nil {
		fail("consumer group: %v", err)
	}
	h := &handler{want: count, lastSeq: map[string]int{}, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	go func() {
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "consume: %v\n", err)
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	select {
	case <-h.done:
	case <-ctx.Done():
	}
	cancel()
	group.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Printf("produced=%d consumed=%d out_of_order=%d\n", count, h.seen, h.disorder)
	if h.seen < count || h.disorder != 0 {
		os.Exit(1)
	}
}
