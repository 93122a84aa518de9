// Command controlplane is the xDS control plane of rgrpc's xDS tests, built on go-control-plane's
// snapshot cache: ADS and the separate discovery services on one port, on loopback.
//
//	controlplane --port=N
//
// It reads snapshot specs from stdin, one JSON object per line, and serves each as the snapshot
// of every node. It prints one line per event on stdout:
//
//	SERVING <port>
//	SET <version>
//	ACK <node id> <type url> <version>
//	NACK <node id> <type url> <error message>
//
// A spec:
//
//	{"version": "1", "listener": "greeter", "route_name": "r",
//	 "routes": [{"prefix": "/", "header": "x-route", "header_exact": "b", "bad_regex": false,
//	             "clusters": [["a", 80], ["b", 20]],
//	             "retry_on": "unavailable", "num_retries": 3}],
//	 "clusters": [{"name": "a", "outlier": false,
//	               "endpoints": [{"port": 5001, "locality": "z1", "priority": 0, "weight": 1,
//	                              "health": "HEALTHY"}]}]}
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"sync"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type routeSpec struct {
	Prefix      string   `json:"prefix"`
	Header      string   `json:"header"`
	HeaderExact string   `json:"header_exact"`
	BadRegex    bool     `json:"bad_regex"`
	Clusters    [][2]any `json:"clusters"`
	RetryOn     string   `json:"retry_on"`
	NumRetries  uint32   `json:"num_retries"`
}

type endpointSpec struct {
	Port     uint32 `json:"port"`
	Locality string `json:"locality"`
	Priority uint32 `json:"priority"`
	Weight   uint32 `json:"weight"`
	Health   string `json:"health"`
}

type clusterSpec struct {
	Name      string         `json:"name"`
	Outlier   bool           `json:"outlier"`
	Endpoints []endpointSpec `json:"endpoints"`
}

type spec struct {
	Version   string        `json:"version"`
	Listener  string        `json:"listener"`
	RouteName string        `json:"route_name"`
	Routes    []routeSpec   `json:"routes"`
	Clusters  []clusterSpec `json:"clusters"`
}

// everyone gives all nodes one snapshot.
type everyone struct{}

func (everyone) ID(*core.Node) string { return "all" }

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		log.Fatal(err)
	}
	return a
}

func ads() *core.ConfigSource {
	return &core.ConfigSource{
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
		ResourceApiVersion:    core.ApiVersion_V3,
	}
}

func build(s spec) (map[resource.Type][]types.Resource, error) {
	manager := &hcm.HttpConnectionManager{
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource: ads(), RouteConfigName: s.RouteName,
		}},
		HttpFilters: []*hcm.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&router.Router{})},
		}},
	}
	lis := &listener.Listener{
		Name:        s.Listener,
		ApiListener: &listener.ApiListener{ApiListener: mustAny(manager)},
	}
	var routes []*route.Route
	for _, r := range s.Routes {
		m := &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: r.Prefix}}
		if r.BadRegex {
			m.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: "(("}}
		}
		if r.Header != "" {
			m.Headers = []*route.HeaderMatcher{{
				Name:                 r.Header,
				HeaderMatchSpecifier: &route.HeaderMatcher_ExactMatch{ExactMatch: r.HeaderExact},
			}}
		}
		action := &route.RouteAction{}
		if len(r.Clusters) == 1 {
			action.ClusterSpecifier = &route.RouteAction_Cluster{Cluster: r.Clusters[0][0].(string)}
		} else {
			w := &route.WeightedCluster{}
			for _, c := range r.Clusters {
				w.Clusters = append(w.Clusters, &route.WeightedCluster_ClusterWeight{
					Name: c[0].(string), Weight: wrapperspb.UInt32(uint32(c[1].(float64))),
				})
			}
			action.ClusterSpecifier = &route.RouteAction_WeightedClusters{WeightedClusters: w}
		}
		if r.RetryOn != "" {
			action.RetryPolicy = &route.RetryPolicy{
				RetryOn:    r.RetryOn,
				NumRetries: wrapperspb.UInt32(r.NumRetries),
				RetryBackOff: &route.RetryPolicy_RetryBackOff{
					BaseInterval: durationpb.New(10e6), MaxInterval: durationpb.New(100e6),
				},
			}
		}
		routes = append(routes, &route.Route{Match: m, Action: &route.Route_Route{Route: action}})
	}
	rc := &route.RouteConfiguration{
		Name:         s.RouteName,
		VirtualHosts: []*route.VirtualHost{{Name: "all", Domains: []string{"*"}, Routes: routes}},
	}
	var clusters, assignments []types.Resource
	for _, c := range s.Clusters {
		cl := &cluster.Cluster{
			Name:                 c.Name,
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
			EdsClusterConfig:     &cluster.Cluster_EdsClusterConfig{EdsConfig: ads(), ServiceName: c.Name},
			LbPolicy:             cluster.Cluster_ROUND_ROBIN,
		}
		if c.Outlier {
			cl.OutlierDetection = &cluster.OutlierDetection{
				Interval:                       durationpb.New(1e9),
				BaseEjectionTime:               durationpb.New(30e9),
				MaxEjectionPercent:             wrapperspb.UInt32(50),
				EnforcingSuccessRate:           wrapperspb.UInt32(0),
				FailurePercentageThreshold:     wrapperspb.UInt32(50),
				EnforcingFailurePercentage:     wrapperspb.UInt32(100),
				FailurePercentageMinimumHosts:  wrapperspb.UInt32(2),
				FailurePercentageRequestVolume: wrapperspb.UInt32(10),
			}
		}
		clusters = append(clusters, cl)
		type key struct {
			priority uint32
			locality string
		}
		groups := map[key]*endpoint.LocalityLbEndpoints{}
		var order []key
		for _, e := range c.Endpoints {
			k := key{e.Priority, e.Locality}
			g, ok := groups[k]
			if !ok {
				weight := e.Weight
				if weight == 0 {
					weight = 1
				}
				g = &endpoint.LocalityLbEndpoints{
					Locality:            &core.Locality{Zone: e.Locality},
					LoadBalancingWeight: wrapperspb.UInt32(weight),
					Priority:            e.Priority,
				}
				groups[k] = g
				order = append(order, k)
			}
			health := core.HealthStatus_HEALTHY
			if e.Health != "" {
				health = core.HealthStatus(core.HealthStatus_value[e.Health])
			}
			g.LbEndpoints = append(g.LbEndpoints, &endpoint.LbEndpoint{
				HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
					Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
						Address: "127.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: e.Port},
					}}},
				}},
				HealthStatus: health,
			})
		}
		cla := &endpoint.ClusterLoadAssignment{ClusterName: c.Name}
		for _, k := range order {
			cla.Endpoints = append(cla.Endpoints, groups[k])
		}
		assignments = append(assignments, cla)
	}
	return map[resource.Type][]types.Resource{
		resource.ListenerType: {lis},
		resource.RouteType:    {rc},
		resource.ClusterType:  clusters,
		resource.EndpointType: assignments,
	}, nil
}

func main() {
	port := flag.Int("port", 0, "the port to serve on (127.0.0.1)")
	flag.Parse()
	// Not in ADS mode: that mode answers a named request only when it names every resource of
	// the snapshot, and our snapshots hold clusters that a route configuration may not name.
	snapshots := cache.NewSnapshotCache(false, everyone{}, nil)
	var mu sync.Mutex
	nodes := map[int64]string{}
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	callbacks := server.CallbackFuncs{
		StreamRequestFunc: func(id int64, req *discovery.DiscoveryRequest) error {
			mu.Lock()
			if req.GetNode() != nil {
				nodes[id] = req.GetNode().GetId()
			}
			node := nodes[id]
			mu.Unlock()
			if req.GetErrorDetail() != nil {
				say("NACK %s %s %s", node, req.GetTypeUrl(), req.GetErrorDetail().GetMessage())
			} else if req.GetResponseNonce() != "" {
				say("ACK %s %s %s", node, req.GetTypeUrl(), req.GetVersionInfo())
			}
			return nil
		},
	}
	ctx := context.Background()
	srv := server.NewServer(ctx, snapshots, callbacks)
	g := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(g, srv)
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, srv)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, srv)
	routeservice.RegisterRouteDiscoveryServiceServer(g, srv)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, srv)
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		if err := g.Serve(lis); err != nil {
			log.Fatal(err)
		}
	}()
	say("SERVING %d", lis.Addr().(*net.TCPAddr).Port)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var s spec
		if err := json.Unmarshal(in.Bytes(), &s); err != nil {
			log.Fatalf("bad spec: %v", err)
		}
		resources, err := build(s)
		if err != nil {
			log.Fatal(err)
		}
		snap, err := cache.NewSnapshot(s.Version, resources)
		if err != nil {
			log.Fatal(err)
		}
		if err := snapshots.SetSnapshot(ctx, "all", snap); err != nil {
			log.Fatal(err)
		}
		say("SET %s", s.Version)
	}
	// Stdin closed: keep serving until killed.
	select {}
}
