//go:build !nortc

package main

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/pion/webrtc/v4"
)

// pionAnswerer keeps one peer connection, the newest: a new offer replaces the old one.
type pionAnswerer struct {
	api  *webrtc.API
	echo *counters
	mu   sync.Mutex
	pc   *webrtc.PeerConnection
}

func newRTCAnswerer(echo *counters, sctpRecvBuffer int) (rtcAnswerer, error) {
	var se webrtc.SettingEngine
	if sctpRecvBuffer > 0 {
		se.SetSCTPMaxReceiveBufferSize(uint32(sctpRecvBuffer))
	}
	// Loopback only: the spike offers and accepts no other address.
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return &pionAnswerer{api: webrtc.NewAPI(webrtc.WithSettingEngine(se)), echo: echo}, nil
}

func (p *pionAnswerer) Answer(ctx context.Context, offer string) (string, error) {
	pc, err := p.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", err
	}
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			if reply := p.echo.handle(m.Data); reply != nil {
				dc.Send(reply)
			}
		})
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		pc.Close()
		return "", err
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		pc.Close()
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		pc.Close()
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		pc.Close()
		return "", errors.New("ICE gathering did not finish in time")
	}
	p.mu.Lock()
	old := p.pc
	p.pc = pc
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return pc.LocalDescription().SDP, nil
}

func (p *pionAnswerer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pc != nil {
		return p.pc.Close()
	}
	return nil
}
