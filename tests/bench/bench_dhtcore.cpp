// bench_dhtcore: dhtcore nodes in one process, driven only through the C
// interface (dwrtc.h), as the nginx module drives them.
//
// Two nodes on loopback (ports chosen by the system, bound to 127.0.0.1,
// node B bootstraps from node A's DHT port, OpenDHT rate limits lifted):
//
//   start       time of dwrtc_node_start(), and from start to the node's
//               "published its record" log line (A, alone at first,
//               publishes once B has joined).
//   latency     one-way latency A -> B (submit on A to delivery drained on
//               B), at a fixed low rate; the body carries the send time.
//   throughput  messages per second A -> B with a bounded window of
//               outstanding messages per pair; process CPU per message
//               (both nodes' threads and this driver thread).
//   cold        first message to a cold node: fresh nodes join the network;
//               once a node has published its record a session opens on it
//               and a fresh session on A sends it a message; time from
//               session open to delivery (DHT lookup + link connect). Then
//               the same pair once more (warm) for comparison. Batches
//               are stopped after use (so later lookups meet departed nodes,
//               as in a live network) unless --cold-keep 1 keeps them all
//               (a steady network; at most 100 samples).
//
// Results are JSON lines on stdout. Benchmarks print numbers; nothing here
// passes or fails on time. Every loop is bounded in count and in time.

#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dwrtc/dwrtc.h"

namespace {

uint64_t nowNs()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

double processCpuUs()
{
    rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// Busy time of the whole machine (all cores, every process) in seconds, and
// what this process used: the difference is what else ran beside the bench.
double machineBusySeconds()
{
    FILE *f = std::fopen("/proc/stat", "r");
    if (!f)
        return 0;
    unsigned long long v[8] = {0};
    int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
                        &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                        &v[7]);
    std::fclose(f);
    if (n < 4)
        return 0;
    static const long hz = sysconf(_SC_CLK_TCK);
    return double(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / double(hz);
}

struct CpuWindow {
    double machine0 = machineBusySeconds();
    double self0 = processCpuUs() / 1e6;
    uint64_t t0 = nowNs();
    double selfCores() const
    {
        return (processCpuUs() / 1e6 - self0) / seconds();
    }
    double otherCores() const
    {
        double m = (machineBusySeconds() - machine0) / seconds();
        return std::max(0.0, m - selfCores());
    }
    double seconds() const { return std::max(1e-9, double(nowNs() - t0) / 1e9); }
};

// Exact percentiles from kept samples (this bench keeps at most a few
// hundred thousand).
class Samples {
public:
    void add(uint64_t ns) { v_.push_back(ns); }
    size_t count() const { return v_.size(); }
    double us(double q)
    {
        if (v_.empty())
            return 0;
        std::sort(v_.begin(), v_.end());
        size_t i = size_t(std::ceil(q * double(v_.size())));
        i = std::clamp<size_t>(i, 1, v_.size()) - 1;
        return double(v_[i]) / 1e3;
    }
    void print(const char *prefix)
    {
        std::printf(",\"%scount\":%zu,\"%sp50_us\":%.1f,\"%sp90_us\":%.1f,"
                    "\"%sp99_us\":%.1f,\"%sp999_us\":%.1f,\"%smax_us\":%.1f",
                    prefix, count(), prefix, us(0.5), prefix, us(0.9), prefix,
                    us(0.99), prefix, us(0.999), prefix, us(1.0));
    }

private:
    std::vector<uint64_t> v_;
};

struct Options {
    double seconds = 5;   // latency and throughput windows
    double rate = 2000;   // latency: messages/s in total
    int pairs = 16;
    int window = 32;      // throughput: outstanding per pair
    int size = 256;       // body padding
    int cold = 200;       // cold samples
    int coldBatch = 10;   // fresh nodes started at once
    bool coldKeep = false; // keep every fresh node to the end (no departures)
    bool onlyCold = false;
    double timeout = 10;  // per wait
};

struct Node;

// The driver: one thread, like an nginx worker, owning every node.
class Bench {
public:
    explicit Bench(const Options &o) : o_(o)
    {
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        pad_.assign(size_t(o.size), 'x');
    }
    ~Bench() { ::close(ep_); }

    std::unique_ptr<Node> makeNode(unsigned bootstrapPort);
    void poll(int timeoutMs);
    void pollNs(uint64_t timeoutNs);
    int run();

    // Called from drain callbacks.
    void onDelivery(Node &n, std::string_view session, std::string_view data);
    void onLog(Node &n, int level, std::string_view line);

private:
    struct Pair {
        std::string a, b; // session ids on A and B
        uint64_t nextSeq = 0;
        int64_t outstanding = 0;
    };

    bool submit(Node &from, const std::string &session,
                const std::string &recipient, uint32_t pair, uint64_t seq);
    bool waitFor(const bool &flag, double seconds);
    bool waitPublished(Node &n);
    void runStart();
    void runLatency();
    void runThroughput();
    void runCold();
    void stopAll(std::vector<std::unique_ptr<Node>> &nodes);

    const Options &o_;
    int ep_;
    std::string pad_;
    std::string msg_;
    std::unique_ptr<Node> a_, b_;
    std::vector<Pair> pairs_;
    bool counting_ = false;
    uint64_t windowStart_ = 0, windowEnd_ = UINT64_MAX;
    uint64_t delivered_ = 0;
    uint64_t notFound_ = 0;
    uint64_t errors_ = 0;
    uint64_t logErrors_ = 0;
    Samples latency_;
    bool refill_ = false;

    // cold: the one message being waited for
    std::string coldRecipient_;
    bool coldDelivered_ = false;
    bool coldNotFound_ = false;
    uint64_t coldAt_ = 0;
};

struct Node {
    Bench *bench = nullptr;
    dwrtc_node *handle = nullptr;
    int efd = -1;
    bool published = false;
    uint64_t startedAt = 0, publishedAt = 0;
    ~Node()
    {
        dwrtc_node_destroy(handle);
    }
};

int deliveryTrampoline(void *ctx, const char *sid, size_t sidLen,
                       const char *data, size_t len)
{
    Node *n = static_cast<Node *>(ctx);
    n->bench->onDelivery(*n, std::string_view(sid, sidLen),
                         std::string_view(data, len));
    return 0;
}

void logTrampoline(void *ctx, int level, const char *msg, size_t len)
{
    Node *n = static_cast<Node *>(ctx);
    n->bench->onLog(*n, level, std::string_view(msg, len));
}

std::unique_ptr<Node> Bench::makeNode(unsigned bootstrapPort)
{
    dwrtc_options *opt = dwrtc_options_create();
    if (!opt)
        return nullptr;
    static const char host[] = "127.0.0.1";
    dwrtc_options_set_dht_ports(opt, 0, 0);
    dwrtc_options_set_link_ports(opt, 0, 0);
    dwrtc_options_set_bind_address(opt, host, sizeof host - 1);
    dwrtc_options_set_public_address(opt, host, sizeof host - 1);
    dwrtc_options_set_dht_rate_limits(opt, -1, -1);
    dwrtc_options_set_queue_limit(opt, 1 << 16);
    dwrtc_options_set_log_level(opt, DWRTC_LOG_INFO);
    if (bootstrapPort) {
        std::string bs = "127.0.0.1:" + std::to_string(bootstrapPort);
        dwrtc_options_add_bootstrap(opt, bs.data(), bs.size());
    }
    auto n = std::make_unique<Node>();
    n->bench = this;
    int rc = dwrtc_node_create(opt, &n->handle);
    dwrtc_options_destroy(opt);
    if (rc != DWRTC_OK)
        return nullptr;
    n->efd = dwrtc_node_event_fd(n->handle);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = n.get();
    epoll_ctl(ep_, EPOLL_CTL_ADD, n->efd, &ev);
    n->startedAt = nowNs();
    rc = dwrtc_node_start(n->handle);
    if (rc != DWRTC_OK) {
        std::fprintf(stderr, "bench_dhtcore: start failed: %s\n",
                     dwrtc_strerror(rc));
        epoll_ctl(ep_, EPOLL_CTL_DEL, n->efd, nullptr);
        return nullptr;
    }
    return n;
}

void Bench::poll(int timeoutMs)
{
    pollNs(uint64_t(timeoutMs) * 1000000u);
}

// Waits with nanosecond precision, so a paced sender sleeps between sends
// instead of spinning a core the nodes' threads need.
void Bench::pollNs(uint64_t timeoutNs)
{
    epoll_event evs[64];
    timespec ts;
    ts.tv_sec = time_t(timeoutNs / 1000000000u);
    ts.tv_nsec = long(timeoutNs % 1000000000u);
    int n = epoll_pwait2(ep_, evs, 64, &ts, nullptr);
    for (int i = 0; i < n; ++i) {
        Node *node = static_cast<Node *>(evs[i].data.ptr);
        dwrtc_node_drain(node->handle, 0, deliveryTrampoline, logTrampoline,
                         node);
    }
}

void Bench::onLog(Node &n, int level, std::string_view line)
{
    if (!n.published &&
        line.find("published its record") != std::string_view::npos) {
        n.published = true;
        n.publishedAt = nowNs();
    }
    static const bool verbose = std::getenv("BENCH_VERBOSE") != nullptr;
    if (verbose || (level <= DWRTC_LOG_WARN && ++logErrors_ <= 5))
        std::fprintf(stderr, "bench_dhtcore: core log: %.*s\n",
                     int(line.size()), line.data());
}

void Bench::onDelivery(Node &, std::string_view session, std::string_view data)
{
    uint64_t now = nowNs();
    size_t at = data.find("LG1 ");
    if (at == std::string_view::npos) {
        bool nf = data.find("not found") != std::string_view::npos;
        if (nf && ++notFound_ <= 2)
            std::fprintf(stderr, "bench_dhtcore: %.*s\n",
                         int(std::min<size_t>(data.size(), 300)), data.data());
        else if (++errors_ <= 3)
            std::fprintf(stderr, "bench_dhtcore: unexpected: %.*s\n",
                         int(std::min<size_t>(data.size(), 300)), data.data());
        if (nf && !coldRecipient_.empty() &&
            data.find(coldRecipient_) != std::string_view::npos)
            coldNotFound_ = true;
        return;
    }
    char tmp[80];
    size_t n = std::min(data.size() - at - 4, sizeof tmp - 1);
    std::memcpy(tmp, data.data() + at + 4, n);
    tmp[n] = '\0';
    unsigned long long pair = 0, seq = 0, sent = 0;
    if (std::sscanf(tmp, "%llu %llu %llu", &pair, &seq, &sent) != 3)
        return;
    if (!coldRecipient_.empty() && session == coldRecipient_) {
        coldDelivered_ = true;
        coldAt_ = now;
        return;
    }
    if (pair >= pairs_.size())
        return;
    Pair &p = pairs_[pair];
    --p.outstanding;
    if (sent >= windowStart_ && sent < windowEnd_) {
        if (counting_)
            latency_.add(now - sent);
    }
    if (now >= windowStart_ && now < windowEnd_)
        ++delivered_;
    if (refill_)
        while (p.outstanding < o_.window)
            if (!submit(*a_, p.a, p.b, uint32_t(pair), p.nextSeq++))
                break;
}

bool Bench::submit(Node &from, const std::string &session,
                   const std::string &recipient, uint32_t pair, uint64_t seq)
{
    char body[96];
    int bl = std::snprintf(body, sizeof body, "LG1 %u %llu %llu ", pair,
                           (unsigned long long)seq,
                           (unsigned long long)nowNs());
    msg_.clear();
    msg_ += "{\"type\":\"offer\",\"recipientSessionId\":\"";
    msg_ += recipient;
    msg_ += "\",\"messageBody\":\"";
    msg_.append(body, size_t(bl));
    msg_ += pad_;
    msg_ += "\"}";
    int rc = dwrtc_submit(from.handle, session.data(), session.size(),
                          msg_.data(), msg_.size());
    if (rc != DWRTC_OK) {
        if (++errors_ <= 3)
            std::fprintf(stderr, "bench_dhtcore: submit: %s\n",
                         dwrtc_strerror(rc));
        return false;
    }
    if (pair < pairs_.size())
        ++pairs_[pair].outstanding;
    return true;
}

bool Bench::waitFor(const bool &flag, double seconds)
{
    uint64_t end = nowNs() + uint64_t(seconds * 1e9);
    while (!flag && nowNs() < end)
        poll(1);
    return flag;
}

bool Bench::waitPublished(Node &n)
{
    return waitFor(n.published, o_.timeout);
}

std::string openSession(Node &n)
{
    char id[DWRTC_SESSION_ID_LEN];
    if (dwrtc_session_open(n.handle, id) != DWRTC_OK)
        return {};
    return std::string(id, sizeof id);
}

void Bench::runStart()
{
    // A node alone has no DHT peer to store its record on: A publishes once
    // B has joined.
    uint64_t t0 = nowNs();
    a_ = makeNode(0);
    uint64_t t1 = nowNs();
    if (!a_) {
        std::printf("{\"bench\":\"dhtcore_start\",\"error\":\"node A did not "
                    "start\"}\n");
        std::exit(1);
    }
    b_ = makeNode(dwrtc_node_dht_port(a_->handle));
    uint64_t t2 = nowNs();
    if (!b_ || !waitPublished(*b_) || !waitPublished(*a_)) {
        std::printf("{\"bench\":\"dhtcore_start\",\"error\":\"nodes did not "
                    "start or publish\"}\n");
        std::exit(1);
    }
    std::printf("{\"bench\":\"dhtcore_start\",\"a_start_ms\":%.2f,"
                "\"b_start_ms\":%.2f,\"a_publish_ms\":%.2f,"
                "\"b_publish_ms\":%.2f}\n",
                (t1 - t0) / 1e6, (t2 - t1) / 1e6,
                (a_->publishedAt - a_->startedAt) / 1e6,
                (b_->publishedAt - b_->startedAt) / 1e6);
    std::fflush(stdout);

    // Open the pairs and make sure A reaches B before measuring.
    pairs_.resize(size_t(o_.pairs));
    for (Pair &p : pairs_) {
        p.a = openSession(*a_);
        p.b = openSession(*b_);
    }
    for (uint32_t i = 0; i < pairs_.size(); ++i) {
        Pair &p = pairs_[i];
        uint64_t end = nowNs() + uint64_t(o_.timeout * 1e9);
        while (nowNs() < end) {
            uint64_t before = notFound_;
            submit(*a_, p.a, p.b, i, p.nextSeq++);
            while (p.outstanding > 0 && notFound_ == before && nowNs() < end)
                poll(1);
            if (p.outstanding <= 0)
                break;
            p.outstanding = 0; // answered "not found": try again
            usleep(5000);
        }
    }
}

void Bench::runLatency()
{
    latency_ = Samples();
    uint64_t start = nowNs();
    windowStart_ = start + 500000000; // 0.5 s warm-up
    windowEnd_ = windowStart_ + uint64_t(o_.seconds * 1e9);
    counting_ = true;
    uint64_t period = uint64_t(1e9 / o_.rate);
    uint64_t next = start;
    uint64_t sent = 0;
    size_t rr = 0;
    std::unique_ptr<CpuWindow> cpu;
    double otherCores = 0;
    while (nowNs() < windowEnd_) {
        if (!cpu && nowNs() >= windowStart_)
            cpu = std::make_unique<CpuWindow>();
        uint64_t now = nowNs();
        while (next <= now) {
            Pair &p = pairs_[rr];
            if (next >= windowStart_)
                ++sent;
            submit(*a_, p.a, p.b, uint32_t(rr), p.nextSeq++);
            rr = (rr + 1) % pairs_.size();
            next += period;
        }
        pollNs(next - std::min(next, nowNs()));
    }
    if (cpu)
        otherCores = cpu->otherCores();
    uint64_t drainEnd = nowNs() + 2000000000ull;
    while (nowNs() < drainEnd && latency_.count() < sent)
        poll(1);
    counting_ = false;
    std::printf("{\"bench\":\"dhtcore_latency\",\"rate\":%.0f,\"pairs\":%d,"
                "\"size\":%d,\"sent\":%llu,\"lost\":%llu",
                o_.rate, o_.pairs, o_.size, (unsigned long long)sent,
                (unsigned long long)(sent > latency_.count()
                                         ? sent - latency_.count()
                                         : 0));
    latency_.print("");
    std::printf(",\"other_busy_cores\":%.2f}\n", otherCores);
    std::fflush(stdout);
}

void Bench::runThroughput()
{
    for (Pair &p : pairs_)
        p.outstanding = 0;
    latency_ = Samples();
    delivered_ = 0;
    uint64_t start = nowNs();
    windowStart_ = start + 500000000;
    windowEnd_ = windowStart_ + uint64_t(o_.seconds * 1e9);
    counting_ = true;
    refill_ = true;
    for (uint32_t i = 0; i < pairs_.size(); ++i) {
        Pair &p = pairs_[i];
        while (p.outstanding < o_.window)
            if (!submit(*a_, p.a, p.b, i, p.nextSeq++))
                break;
    }
    while (nowNs() < windowStart_)
        poll(1);
    double c0 = processCpuUs();
    uint64_t t0 = nowNs();
    CpuWindow cpu;
    while (nowNs() < windowEnd_)
        poll(1);
    double otherCores = cpu.otherCores();
    double c1 = processCpuUs();
    uint64_t t1 = nowNs();
    refill_ = false;
    counting_ = false;
    uint64_t drainEnd = nowNs() + 2000000000ull;
    while (nowNs() < drainEnd) {
        int64_t out = 0;
        for (const Pair &p : pairs_)
            out += std::max<int64_t>(p.outstanding, 0);
        if (out == 0)
            break;
        poll(1);
    }
    double s = double(t1 - t0) / 1e9;
    std::printf("{\"bench\":\"dhtcore_throughput\",\"pairs\":%d,\"window\":%d,"
                "\"size\":%d,\"delivered\":%llu,\"msgs_per_s\":%.0f,"
                "\"process_cpu_util\":%.3f,\"process_cpu_us_per_msg\":%.2f",
                o_.pairs, o_.window, o_.size, (unsigned long long)delivered_,
                double(delivered_) / s, (c1 - c0) / 1e6 / s,
                delivered_ ? (c1 - c0) / double(delivered_) : 0.0);
    latency_.print("");
    std::printf(",\"other_busy_cores\":%.2f}\n", otherCores);
    std::fflush(stdout);
}

void Bench::runCold()
{
    if (o_.cold == 0)
        return;
    Samples cold, warm, publish, start;
    std::vector<std::unique_ptr<Node>> kept;
    uint64_t retries = 0;
    int failed = 0;
    int done = 0;
    uint64_t runEnd = nowNs() + uint64_t(std::max(120.0, o_.cold * 2.0) * 1e9);
    unsigned bootstrap = dwrtc_node_dht_port(a_->handle);
    while (done + failed < o_.cold && nowNs() < runEnd) {
        int batch = std::min(o_.coldBatch, o_.cold - done - failed);
        std::vector<std::unique_ptr<Node>> fresh;
        for (int i = 0; i < batch; ++i) {
            uint64_t t = nowNs();
            auto n = makeNode(bootstrap);
            if (n) {
                start.add(nowNs() - t);
                fresh.push_back(std::move(n));
            } else {
                ++failed;
            }
        }
        for (auto &n : fresh) {
            if (!waitPublished(*n)) {
                ++failed;
                continue;
            }
            publish.add(n->publishedAt - n->startedAt);
            std::string from = openSession(*a_);
            uint64_t tOpen = nowNs();
            coldRecipient_ = openSession(*n);
            coldDelivered_ = false;
            uint64_t end = tOpen + uint64_t(o_.timeout * 1e9);
            bool ok = false;
            while (nowNs() < end) {
                coldNotFound_ = false;
                submit(*a_, from, coldRecipient_, UINT32_MAX, 0);
                while (!coldDelivered_ && !coldNotFound_ && nowNs() < end)
                    poll(1);
                if (coldDelivered_) {
                    ok = true;
                    break;
                }
                ++retries;
                usleep(2000);
            }
            if (!ok) {
                ++failed;
            } else {
                cold.add(coldAt_ - tOpen);
                static const bool verbose = std::getenv("BENCH_VERBOSE");
                if (verbose && coldAt_ - tOpen > 100000000)
                    std::fprintf(stderr,
                                 "bench_dhtcore: cold sample %d took %.1f ms "
                                 "(%d-th of its batch)\n",
                                 done, double(coldAt_ - tOpen) / 1e6,
                                 int(&n - &fresh[0]));
                ++done;
                coldDelivered_ = false;
                uint64_t t = nowNs();
                submit(*a_, from, coldRecipient_, UINT32_MAX, 1);
                if (waitFor(coldDelivered_, o_.timeout))
                    warm.add(coldAt_ - t);
            }
            dwrtc_session_close(a_->handle, from.data(), from.size());
            coldRecipient_.clear();
        }
        if (o_.coldKeep) {
            for (auto &n : fresh)
                kept.push_back(std::move(n));
            continue;
        }
        stopAll(fresh);
    }
    stopAll(kept);
    std::printf("{\"bench\":\"dhtcore_cold\",\"keep\":%s,\"samples\":%d,"
                "\"failed\":%d,\"not_found_retries\":%llu,\"batch\":%d",
                o_.coldKeep ? "true" : "false", done, failed,
                (unsigned long long)retries, o_.coldBatch);
    cold.print("cold_");
    warm.print("warm_");
    start.print("node_start_");
    publish.print("node_publish_");
    std::printf("}\n");
    std::fflush(stdout);
}

// Stops nodes in parallel: each stop waits for its record's withdrawal.
// Distinct nodes may be used from distinct threads.
void Bench::stopAll(std::vector<std::unique_ptr<Node>> &nodes)
{
    {
        std::vector<std::thread> stoppers;
        for (auto &n : nodes) {
            epoll_ctl(ep_, EPOLL_CTL_DEL, n->efd, nullptr);
            stoppers.emplace_back([node = std::move(n)]() mutable {
                node.reset();
            });
        }
        for (auto &t : stoppers)
            t.join();
    }
    nodes.clear();
}

int Bench::run()
{
    runStart();
    if (!o_.onlyCold) {
        runLatency();
        runThroughput();
    }
    runCold();
    pairs_.clear();
    b_.reset();
    a_.reset();
    return 0;
}

void usage()
{
    std::fputs("usage: bench_dhtcore [--seconds S] [--rate R] [--pairs N]\n"
               "                     [--window W] [--size B] [--cold N]\n"
               "                     [--cold-batch B] [--cold-keep 0|1]\n"
               "                     [--only-cold 0|1]\n",
               stderr);
}

} // namespace

int main(int argc, char **argv)
{
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        double v = std::atof(argv[++i]);
        if (k == "--seconds")
            o.seconds = std::clamp(v, 0.1, 600.0);
        else if (k == "--rate")
            o.rate = std::clamp(v, 1.0, 1e6);
        else if (k == "--pairs")
            o.pairs = std::clamp(int(v), 1, 10000);
        else if (k == "--window")
            o.window = std::clamp(int(v), 1, 10000);
        else if (k == "--size")
            o.size = std::clamp(int(v), 0, 60000);
        else if (k == "--cold")
            o.cold = std::clamp(int(v), 0, 100000);
        else if (k == "--cold-batch")
            o.coldBatch = std::clamp(int(v), 1, 100);
        else if (k == "--cold-keep")
            o.coldKeep = v != 0;
        else if (k == "--only-cold")
            o.onlyCold = v != 0;
        else {
            usage();
            return 2;
        }
    }
    // OpenDHT's socket thread uses select(): a node started once the process
    // holds 1,024 descriptors aborts it. A node takes about 8.
    if (o.coldKeep)
        o.cold = std::min(o.cold, 100);
    Bench bench(o);
    return bench.run();
}
