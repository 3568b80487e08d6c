// Package simulate generates the device traffic gridlake is built for: a
// battery fleet and a hotel, deterministic from a seed, with injected faults
// (duplicates, reordering, loss, late edge backlogs, malformed messages).
// Tests replay exactly what it sent to compute expected results.
package simulate

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/schemas"
)

// Options configure a simulation.
type Options struct {
	Batteries int
	Rooms     int
	Rate      float64   // readings per second per battery
	Seed      uint64    // the same seed and options send the same messages
	Start     time.Time // simulated time of the first tick
	Faults    Faults
}

// Faults are the injected imperfections of real device fleets.
type Faults struct {
	Duplicate float64       // probability a message is sent twice
	Loss      float64       // probability a message is never sent
	Reorder   time.Duration // a fifth of messages are held back up to this long
	Late      float64       // probability a message is an edge backlog reading
	LateDelay time.Duration // how old backlog readings are
	Malformed float64       // probability a message is replaced by a broken one
}

// Stats count what the simulator did.
type Stats struct {
	Sent, Batteries, Rooms      int64 // messages written, by topic
	Duplicates, Lost, Late, Bad int64
	Reordered                   int64
	SimulatedMS                 int64 // simulated time covered
}

// Sim is a deterministic generator of device messages.
type Sim struct {
	opts    Options
	r       *rand.Rand
	packs   []pack
	rooms   []room
	tick    int64
	stepMS  int64
	startMS int64
	held    heldQueue
	seq     int64 // keeps held messages in send order among equal times
	stats   Stats
	buf     []byte
}

// New builds the fleet and the hotel.
func New(o Options) *Sim {
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	s := &Sim{opts: o, r: r, startMS: o.Start.UnixMilli()}
	s.stepMS = int64(1000 / o.Rate)
	if s.stepMS < 1 {
		s.stepMS = 1
	}
	for i := 0; i < o.Batteries; i++ {
		s.packs = append(s.packs, newPack(i, r))
	}
	for i := 0; i < o.Rooms; i++ {
		s.rooms = append(s.rooms, newRoom(i, s.startMS, r))
	}
	return s
}

// Now is the simulated time of the next tick.
func (s *Sim) Now() time.Time { return time.UnixMilli(s.startMS + s.tick*s.stepMS) }

// Stats returns the counters so far.
func (s *Sim) Stats() Stats { return s.stats }

// Step generates one tick: a reading from every battery and the room
// actions that fall due, passed through the faults. It appends the messages
// to send now to out, each with its record timestamp set, and returns it.
func (s *Sim) Step(out []kafka.Message) []kafka.Message {
	now := s.startMS + s.tick*s.stepMS
	s.tick++
	dt := float64(s.stepMS) / 1000
	for i := range s.packs {
		p := &s.packs[i]
		cur, volt := p.step(dt, float64(now)/1000, s.r)
		ts := now
		if s.r.Float64() < s.opts.Faults.Late {
			// An edge gateway's backlog: a reading from hours ago, off the
			// tick grid so it never repeats a reading already sent.
			ts = now - s.opts.Faults.LateDelay.Milliseconds() - 1
			if s.stepMS > 2 {
				ts -= int64(s.r.IntN(int(s.stepMS) - 2)) // strictly between two ticks
			}
			s.stats.Late++
		}
		s.buf = p.appendReading(s.buf[:0], ts, cur, volt)
		out = s.send(out, schemas.TopicBattery, p.id, now)
	}
	for i := range s.rooms {
		rm := &s.rooms[i]
		for rm.next <= now {
			at := rm.next
			k := int64(0)
			rm.act(at, s.r, func(e roomEvent) {
				// Events of one action are a second apart, in order.
				s.buf = appendRoomEvent(s.buf[:0], rm.id, e, at+k*1000)
				k++
				out = s.send(out, schemas.TopicRoom, rm.id, now)
			})
		}
	}
	return s.release(out, now)
}

// send applies the faults to the message in s.buf and queues or emits it.
func (s *Sim) send(out []kafka.Message, topic, key string, now int64) []kafka.Message {
	f := &s.opts.Faults
	if s.r.Float64() < f.Loss {
		s.stats.Lost++
		return out
	}
	value := append([]byte(nil), s.buf...)
	if s.r.Float64() < f.Malformed {
		value = s.malform(value)
		s.stats.Bad++
	}
	copies := 1
	if s.r.Float64() < f.Duplicate {
		copies = 2
		s.stats.Duplicates++
	}
	for c := 0; c < copies; c++ {
		at := now
		if f.Reorder > 0 && s.r.IntN(5) == 0 {
			at += 1 + int64(s.r.IntN(int(f.Reorder.Milliseconds())))
			s.stats.Reordered++
		}
		s.seq++
		msg := kafka.Message{Topic: topic, Key: []byte(key), Value: value}
		if at == now {
			msg.Time = time.UnixMilli(now)
			out = s.emit(out, msg)
		} else {
			heap.Push(&s.held, heldMsg{at: at, seq: s.seq, msg: msg})
		}
	}
	return out
}

func (s *Sim) emit(out []kafka.Message, m kafka.Message) []kafka.Message {
	s.stats.Sent++
	if m.Topic == schemas.TopicBattery {
		s.stats.Batteries++
	} else {
		s.stats.Rooms++
	}
	s.stats.SimulatedMS = m.Time.UnixMilli() - s.startMS
	return append(out, m)
}

// release emits held messages whose time has come.
func (s *Sim) release(out []kafka.Message, now int64) []kafka.Message {
	for s.held.Len() > 0 && s.held[0].at <= now {
		h := heap.Pop(&s.held).(heldMsg)
		h.msg.Time = time.UnixMilli(now) // sent at this tick
		out = s.emit(out, h.msg)
	}
	return out
}

// Flush emits every message still held back, stamped at the current time.
func (s *Sim) Flush(out []kafka.Message) []kafka.Message {
	now := s.startMS + s.tick*s.stepMS
	for s.held.Len() > 0 {
		h := heap.Pop(&s.held).(heldMsg)
		h.msg.Time = time.UnixMilli(max(h.at, now))
		out = s.emit(out, h.msg)
	}
	return out
}

// malform turns a good message into one of the broken kinds devices send.
func (s *Sim) malform(v []byte) []byte {
	switch s.r.IntN(5) {
	case 0:
		return v[:len(v)/2] // truncated
	case 1:
		return []byte("\x00\x01garbage")
	case 2:
		return fmt.Appendf(nil, `{"battery_id":"B-99999","ts":"2026-11-21T09:00:00Z","voltage_v":"high","current_a":1,"temperature_c":20,"soc_pct":50}`)
	case 3:
		return fmt.Appendf(nil, `{"type":"window","room_id":"R-0101","ts":"2026-11-21T09:00:00Z"}`)
	default:
		// Out of physical range: a sensor fault.
		return fmt.Appendf(nil, `{"battery_id":"B-00000","ts":%d,"voltage_v":48,"current_a":1,"temperature_c":999,"soc_pct":50}`, s.startMS+s.tick*s.stepMS)
	}
}

type heldMsg struct {
	at, seq int64
	msg     kafka.Message
}

type heldQueue []heldMsg

func (q heldQueue) Len() int { return len(q) }
func (q heldQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q heldQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *heldQueue) Push(x any)   { *q = append(*q, x.(heldMsg)) }
func (q *heldQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// Sink receives the simulator's messages; a kafka-go Writer is one.
type Sink interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}
