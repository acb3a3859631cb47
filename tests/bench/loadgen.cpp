// loadgen: a WebSocket load generator for signaling servers.
//
// One thread, one epoll loop, non-blocking sockets, client-side RFC 6455
// framing (every frame masked) and a minimal HTTP/1.1 upgrade. It speaks two
// protocols:
//
//   dwrtc   the node sends {"type":"WebSocketIdMessage","id":ID} on connect;
//           clients send {"type":T,"recipientSessionId":R,"messageBody":B}.
//   peerjs  ws://host:port/peerjs?key=K&id=ID&token=TOK, the server sends
//           {"type":"OPEN"}; clients send {"type":"OFFER","dst":R,
//           "payload":{...}} and the recipient gets it with "src" added.
//
// Every benchmark message carries "LG1 <pair> <seq> <send-ns>" (monotonic
// clock of this process) in its body, so the receiver, which lives in the
// same process, measures one-way relay latency without clock sync.
//
// Modes (results are JSON lines on stdout, diagnostics on stderr):
//
//   latency     N sender/receiver pairs, a fixed total send rate; one-way
//               latency p50/p99/p99.9 of the messages sent in the window.
//   throughput  N pairs, each keeps at most W messages outstanding; messages
//               relayed per second in the window, and the server's CPU time
//               per message when --server-pid is given.
//   accept      opens K sessions with at most C handshakes in flight;
//               sessions opened per second and handshake latency.
//   idle        opens sessions up to each checkpoint K1,K2,...; after each
//               one waits --settle seconds and reads the servers' RSS; holds
//               the sessions for --hold seconds.
//   cold        for each receiver URL (a node the sender's node never talked
//               to), opens a session there and times its first message from
//               a fresh session on --url-a: open to delivery.
//
// Every loop is bounded in count and in time (--seconds, --connect-timeout).
// Only loopback addresses (127.0.0.0/8) are accepted.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

// ---------------------------------------------------------------- utilities

uint64_t nowNs()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

[[noreturn]] void die(const char *fmt, const char *arg = "")
{
    std::fprintf(stderr, "loadgen: ");
    std::fprintf(stderr, fmt, arg);
    std::fprintf(stderr, "\n");
    std::exit(2);
}

// xorshift64*: masking keys and ids; not for secrets.
class Rng {
public:
    explicit Rng(uint64_t seed) : s_(seed ? seed : 0x9e3779b97f4a7c15ull) {}
    uint64_t next()
    {
        s_ ^= s_ >> 12;
        s_ ^= s_ << 25;
        s_ ^= s_ >> 27;
        return s_ * 0x2545f4914f6cdd1dull;
    }

private:
    uint64_t s_;
};

// Log-linear histogram of nanoseconds, 128 sub-buckets per power of two
// (under 0.8% error), so that millions of samples cost no memory.
class Histogram {
public:
    Histogram() : buckets_(kBuckets, 0) {}

    void add(uint64_t v)
    {
        ++buckets_[index(v)];
        ++count_;
        sum_ += v;
        max_ = std::max(max_, v);
        min_ = std::min(min_, v);
    }

    uint64_t count() const { return count_; }
    uint64_t max() const { return count_ ? max_ : 0; }
    uint64_t min() const { return count_ ? min_ : 0; }
    double mean() const { return count_ ? double(sum_) / count_ : 0.0; }

    uint64_t percentile(double q) const
    {
        if (count_ == 0)
            return 0;
        uint64_t target = uint64_t(std::ceil(q * double(count_)));
        if (target == 0)
            target = 1;
        uint64_t seen = 0;
        for (size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen >= target)
                return std::min(middle(i), max_);
        }
        return max_;
    }

private:
    static constexpr size_t kSub = 128;
    static constexpr size_t kBuckets = kSub + 57 * kSub;

    static size_t index(uint64_t v)
    {
        if (v < kSub)
            return size_t(v);
        int e = 63 - __builtin_clzll(v); // 7..63
        size_t sub = size_t(v >> (e - 7)) & (kSub - 1);
        return kSub + size_t(e - 7) * kSub + sub;
    }

    static uint64_t middle(size_t i)
    {
        if (i < kSub)
            return i;
        size_t e = (i - kSub) / kSub + 7;
        uint64_t sub = (i - kSub) % kSub;
        uint64_t lower = (kSub + sub) << (e - 7);
        return lower + ((uint64_t(1) << (e - 7)) >> 1);
    }

    std::vector<uint64_t> buckets_;
    uint64_t count_ = 0;
    uint64_t sum_ = 0;
    uint64_t max_ = 0;
    uint64_t min_ = UINT64_MAX;
};

// Server processes observed through /proc: CPU ticks and resident memory.
struct ProcSample {
    uint64_t cpuTicks = 0; // utime + stime, all threads
    uint64_t rssKib = 0;
};

ProcSample sampleProcs(const std::vector<int> &pids)
{
    ProcSample s;
    for (int pid : pids) {
        char path[64];
        char buf[2048];
        std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *f = std::fopen(path, "r");
        if (f) {
            size_t n = std::fread(buf, 1, sizeof buf - 1, f);
            std::fclose(f);
            buf[n] = '\0';
            // Fields after the last ')': state is field 3, utime 14, stime 15.
            const char *p = std::strrchr(buf, ')');
            if (p) {
                p += 2;
                unsigned long long utime = 0, stime = 0;
                if (std::sscanf(p,
                                "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                                "%llu %llu",
                                &utime, &stime) == 2)
                    s.cpuTicks += utime + stime;
            }
        }
        std::snprintf(path, sizeof path, "/proc/%d/status", pid);
        f = std::fopen(path, "r");
        if (f) {
            char line[256];
            while (std::fgets(line, sizeof line, f)) {
                unsigned long long kib;
                if (std::sscanf(line, "VmRSS: %llu kB", &kib) == 1) {
                    s.rssKib += kib;
                    break;
                }
            }
            std::fclose(f);
        }
    }
    return s;
}

// Busy time of the whole machine (all cores, every process), in ticks: what
// else ran beside the benchmark shows as busy cores the servers and this
// client do not account for.
uint64_t machineBusyTicks()
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
    // user nice system idle iowait irq softirq steal: all but idle, iowait
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}

double cpuUs(uint64_t ticks)
{
    static const long hz = sysconf(_SC_CLK_TCK);
    return double(ticks) * 1e6 / double(hz);
}

double selfCpuUs()
{
    rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// Finds "key" : "value" in a flat JSON text; enough for the server
// messages this tool reads. Returns an empty view when absent.
std::string_view jsonString(std::string_view msg, std::string_view key)
{
    std::string pattern = "\"" + std::string(key) + "\"";
    size_t at = msg.find(pattern);
    while (at != std::string_view::npos) {
        size_t p = at + pattern.size();
        while (p < msg.size() && (msg[p] == ' ' || msg[p] == '\t'))
            ++p;
        if (p < msg.size() && msg[p] == ':') {
            ++p;
            while (p < msg.size() && (msg[p] == ' ' || msg[p] == '\t'))
                ++p;
            if (p < msg.size() && msg[p] == '"') {
                size_t end = msg.find('"', p + 1);
                if (end != std::string_view::npos)
                    return msg.substr(p + 1, end - p - 1);
            }
        }
        at = msg.find(pattern, at + 1);
    }
    return {};
}

// ---------------------------------------------------------------- options

enum class Proto { Dwrtc, Peerjs };
enum class Mode { Latency, Throughput, Accept, Idle, Cold };

struct Url {
    std::string text;
    std::string hostPort; // for the Host header
    std::string path;
    sockaddr_in addr{};
};

Url parseUrl(const std::string &text)
{
    Url u;
    u.text = text;
    const std::string scheme = "ws://";
    if (text.compare(0, scheme.size(), scheme) != 0)
        die("only ws:// URLs are supported: %s", text.c_str());
    std::string rest = text.substr(scheme.size());
    size_t slash = rest.find('/');
    u.hostPort = rest.substr(0, slash);
    u.path = slash == std::string::npos ? "/" : rest.substr(slash);
    size_t colon = u.hostPort.rfind(':');
    if (colon == std::string::npos)
        die("URL needs an explicit port: %s", text.c_str());
    std::string host = u.hostPort.substr(0, colon);
    if (host == "localhost")
        host = "127.0.0.1";
    long port = std::strtol(u.hostPort.c_str() + colon + 1, nullptr, 10);
    u.addr.sin_family = AF_INET;
    u.addr.sin_port = htons(uint16_t(port));
    if (port <= 0 || port > 65535 ||
        inet_pton(AF_INET, host.c_str(), &u.addr.sin_addr) != 1)
        die("bad host or port (numeric IPv4 only): %s", text.c_str());
    if ((ntohl(u.addr.sin_addr.s_addr) >> 24) != 127)
        die("refusing a non-loopback address: %s", text.c_str());
    return u;
}

struct Options {
    Proto proto = Proto::Dwrtc;
    Mode mode = Mode::Latency;
    std::string label;
    Url urlA;
    std::vector<Url> urlB; // receivers; several only in cold mode
    int pairs = 100;
    double rate = 1000;   // latency mode, messages/s in total
    int window = 16;      // throughput mode, outstanding per pair
    int size = 256;       // padding bytes in each message body
    double seconds = 10;  // measurement window
    double warmup = 1;    // before the window, not counted
    double drain = 2;     // after the window, waiting for stragglers
    std::vector<int> sessions{1000}; // accept / idle checkpoints
    int concurrency = 200;           // handshakes in flight
    double hold = 0;                 // idle: keep sessions after the last
    double settle = 2;               // idle: wait before reading RSS
    int iterations = 0;              // cold: samples (default: one per URL)
    double connectTimeout = 60;
    int srcIps = 1; // bind to 127.0.0.1..N so ports do not run out
    int srcIpFirst = 0; // of a child process: its first address, minus one
    int procs = 1;      // idle: client processes (each its own fd limit)
    int ctlIn = -1;     // of a child process: the parent's commands
    int ctlOut = -1;    // of a child process: its reports to the parent
    std::vector<int> serverPids;
    std::string origin;
    std::string peerjsKey = "peerjs";
    bool peerjsIdsFromServer = false; // GET {path}{key}/id before each open
    std::string samplesPath; // latency: every message's times, for traces
};

void usage()
{
    std::fputs(
        "usage: loadgen --proto dwrtc|peerjs --mode MODE --url-a ws://H:P/PATH\n"
        "               [--url-b URL[,URL...]] [options]\n"
        "modes: latency throughput accept idle cold\n"
        "  --pairs N            sender/receiver pairs (100)\n"
        "  --rate R             latency: total messages/s (1000)\n"
        "  --window W           throughput: outstanding per pair (16)\n"
        "  --size B             body padding bytes (256)\n"
        "  --seconds S          measurement window (10)\n"
        "  --warmup S           before the window (1)\n"
        "  --drain S            wait for stragglers after the window (2)\n"
        "  --sessions K[,K2..]  accept: sessions; idle: checkpoints (1000)\n"
        "  --concurrency C      handshakes in flight (200)\n"
        "  --hold S             idle: hold after the last checkpoint (0)\n"
        "  --settle S           idle: wait before reading RSS (2)\n"
        "  --iterations N       cold: samples, cycling over --url-b\n"
        "  --connect-timeout S  give up opening sessions after S (60)\n"
        "  --src-ips N          spread client sockets over 127.0.0.1..N (1)\n"
        "  --procs P            idle: open the sessions from P processes, each\n"
        "                       with its own descriptor limit and --src-ips\n"
        "                       addresses of its own (1)\n"
        "  --server-pid PID     server process to sample (repeatable)\n"
        "  --label TEXT         copied into every result line\n"
        "  --origin URL         Origin header (default http://HOST:PORT)\n"
        "  --peerjs-key KEY     PeerJS key (peerjs)\n"
        "  --peerjs-ids uuid|server\n"
        "                       peerjs: ids the client makes up (uuid, the\n"
        "                       default) or asks the server for with\n"
        "                       GET {path}{key}/id before each open (server)\n"
        "  --samples FILE       latency: write \"pair seq sent_ns rx_ns arrived_ns\"\n"
        "                       of every message in the window (CLOCK_MONOTONIC)\n",
        stderr);
}

std::vector<int> parseIntList(const std::string &s)
{
    std::vector<int> out;
    size_t pos = 0;
    while (pos <= s.size()) {
        size_t comma = s.find(',', pos);
        std::string item = s.substr(pos, comma == std::string::npos
                                             ? std::string::npos
                                             : comma - pos);
        if (!item.empty())
            out.push_back(std::atoi(item.c_str()));
        if (comma == std::string::npos)
            break;
        pos = comma + 1;
    }
    return out;
}

Options parseOptions(int argc, char **argv)
{
    Options o;
    bool haveA = false;
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        if (k == "-h" || k == "--help") {
            usage();
            std::exit(0);
        }
        if (i + 1 >= argc)
            die("missing value for %s", k.c_str());
        std::string v = argv[++i];
        if (k == "--proto") {
            if (v == "dwrtc")
                o.proto = Proto::Dwrtc;
            else if (v == "peerjs")
                o.proto = Proto::Peerjs;
            else
                die("unknown protocol %s", v.c_str());
        } else if (k == "--mode") {
            if (v == "latency")
                o.mode = Mode::Latency;
            else if (v == "throughput")
                o.mode = Mode::Throughput;
            else if (v == "accept")
                o.mode = Mode::Accept;
            else if (v == "idle")
                o.mode = Mode::Idle;
            else if (v == "cold")
                o.mode = Mode::Cold;
            else
                die("unknown mode %s", v.c_str());
        } else if (k == "--url-a") {
            o.urlA = parseUrl(v);
            haveA = true;
        } else if (k == "--url-b") {
            size_t pos = 0;
            while (pos < v.size()) {
                size_t comma = v.find(',', pos);
                o.urlB.push_back(parseUrl(v.substr(
                    pos, comma == std::string::npos ? std::string::npos
                                                    : comma - pos)));
                if (comma == std::string::npos)
                    break;
                pos = comma + 1;
            }
        } else if (k == "--pairs") {
            o.pairs = std::atoi(v.c_str());
        } else if (k == "--rate") {
            o.rate = std::atof(v.c_str());
        } else if (k == "--window") {
            o.window = std::atoi(v.c_str());
        } else if (k == "--size") {
            o.size = std::atoi(v.c_str());
        } else if (k == "--seconds") {
            o.seconds = std::atof(v.c_str());
        } else if (k == "--warmup") {
            o.warmup = std::atof(v.c_str());
        } else if (k == "--drain") {
            o.drain = std::atof(v.c_str());
        } else if (k == "--sessions") {
            o.sessions = parseIntList(v);
        } else if (k == "--concurrency") {
            o.concurrency = std::atoi(v.c_str());
        } else if (k == "--hold") {
            o.hold = std::atof(v.c_str());
        } else if (k == "--settle") {
            o.settle = std::atof(v.c_str());
        } else if (k == "--iterations") {
            o.iterations = std::atoi(v.c_str());
        } else if (k == "--connect-timeout") {
            o.connectTimeout = std::atof(v.c_str());
        } else if (k == "--src-ips") {
            o.srcIps = std::atoi(v.c_str());
        } else if (k == "--procs") {
            o.procs = std::atoi(v.c_str());
        } else if (k == "--server-pid") {
            for (int pid : parseIntList(v))
                o.serverPids.push_back(pid);
        } else if (k == "--label") {
            o.label = v;
        } else if (k == "--origin") {
            o.origin = v;
        } else if (k == "--peerjs-key") {
            o.peerjsKey = v;
        } else if (k == "--peerjs-ids") {
            if (v == "server")
                o.peerjsIdsFromServer = true;
            else if (v != "uuid")
                die("--peerjs-ids is uuid or server, not %s", v.c_str());
        } else if (k == "--samples") {
            o.samplesPath = v;
        } else {
            usage();
            die("unknown option %s", k.c_str());
        }
    }
    if (!haveA)
        die("--url-a is required");
    if (o.urlB.empty())
        o.urlB.push_back(o.urlA);
    // Bounds: every loop of this tool is limited in count and in time.
    o.pairs = std::clamp(o.pairs, 1, 100000);
    o.window = std::clamp(o.window, 1, 100000);
    o.size = std::clamp(o.size, 0, 1 << 20);
    o.concurrency = std::clamp(o.concurrency, 1, 100000);
    o.srcIps = std::clamp(o.srcIps, 1, 250);
    o.procs = std::clamp(o.procs, 1, 64);
    if (o.procs > 1 && o.srcIps * o.procs > 250)
        die("--src-ips times --procs is over 250 addresses");
    o.seconds = std::clamp(o.seconds, 0.1, 3600.0);
    o.warmup = std::clamp(o.warmup, 0.0, 600.0);
    o.drain = std::clamp(o.drain, 0.0, 60.0);
    o.hold = std::clamp(o.hold, 0.0, 3600.0);
    o.settle = std::clamp(o.settle, 0.0, 600.0);
    o.connectTimeout = std::clamp(o.connectTimeout, 1.0, 3600.0);
    o.rate = std::clamp(o.rate, 1.0, 1e7);
    for (int &k : o.sessions)
        k = std::clamp(k, 1, 1000000);
    std::sort(o.sessions.begin(), o.sessions.end());
    if (o.sessions.empty())
        o.sessions.push_back(1000);
    if (o.mode == Mode::Cold && o.proto != Proto::Dwrtc)
        die("cold mode needs --proto dwrtc");
    return o;
}

// ---------------------------------------------------------------- engine

enum class State { Connecting, Upgrading, Hello, Open, Closed };

struct Conn {
    int fd = -1;
    uint32_t index = 0;
    State state = State::Connecting;
    const Url *url = nullptr;
    std::string in;  // partial handshake response or partial frame
    std::string out; // bytes not yet written
    size_t outOff = 0;
    bool writable = false;
    bool dirty = false;
    std::string id; // session id (server given for dwrtc, ours for peerjs)
    std::string frag;
    uint64_t tStart = 0; // connect() called
    uint64_t tOpen = 0;  // hello received
    uint64_t rxNs = 0;   // kernel receive time of the last bytes read, or 0
    int pair = -1;       // benchmark pair, or -1
    bool receiver = false;
};

struct Pair {
    uint32_t sender = 0;
    uint32_t receiver = 0;
    uint64_t nextSeq = 0;
    uint64_t lastSeqSeen = 0;
    bool seenAny = false;
    int64_t outstanding = 0;
    uint64_t stallSeq = 0; // messages below this were written off as lost
    uint64_t lastProgress = 0;
};

constexpr uint64_t kTimerTag = UINT64_MAX;

class Engine {
public:
    explicit Engine(const Options &o) : o_(o), rng_(nowNs() ^ uint64_t(getpid()))
    {
        signal(SIGPIPE, SIG_IGN);
        rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0)
            die("epoll_create1 failed");
        readBuf_.resize(1 << 18);
        pad_.assign(size_t(o.size), 'x');
        runTag_ = rng_.next() & 0xffffffffu;
    }

    ~Engine()
    {
        for (auto &c : conns_)
            if (c->fd >= 0)
                ::close(c->fd);
        if (timerFd_ >= 0)
            ::close(timerFd_);
        ::close(ep_);
    }

    int run()
    {
        switch (o_.mode) {
        case Mode::Latency:
        case Mode::Throughput:
            return runMessages();
        case Mode::Accept:
            return runAccept();
        case Mode::Idle:
            return runIdle();
        case Mode::Cold:
            return runCold();
        }
        return 2;
    }

private:
    // ---- connections

    std::string newPeerjsId()
    {
        // A UUID v4 string, as PeerJS's own server hands out.
        uint64_t a = rng_.next(), b = rng_.next();
        char s[40];
        std::snprintf(s, sizeof s, "%08x-%04x-4%03x-%04x-%012llx",
                      uint32_t(a >> 32), uint32_t(a >> 16) & 0xffff,
                      uint32_t(a) & 0xfff,
                      (uint32_t(b >> 48) & 0x3fff) | 0x8000,
                      (unsigned long long)(b & 0xffffffffffffull));
        return s;
    }

    // The id a PeerJS server gives out: GET {path}{key}/id, as the peerjs
    // client asks before it opens its WebSocket. Blocking and bounded (5 s):
    // it runs while sessions are opened, before any window is measured.
    std::string fetchPeerjsId(const Url &url)
    {
        std::string path = url.path;
        if (path.empty() || path.back() != '/')
            path += '/';
        const std::string what = "GET " + path + o_.peerjsKey + "/id";
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket failed");
        timeval tv{5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, reinterpret_cast<const sockaddr *>(&url.addr),
                    sizeof url.addr) < 0)
            die("%s: connect failed", what.c_str());
        std::string req = "GET " + path + o_.peerjsKey + "/id HTTP/1.1\r\nHost: " +
                          url.hostPort + "\r\nConnection: close\r\n\r\n";
        if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) !=
            ssize_t(req.size()))
            die("%s: send failed", what.c_str());
        std::string resp;
        char buf[4096];
        for (;;) {
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0)
                break;
            resp.append(buf, size_t(n));
            if (resp.size() > 65536)
                break;
        }
        ::close(fd);
        size_t body = resp.find("\r\n\r\n");
        if (resp.compare(0, 12, "HTTP/1.1 200") != 0 || body == std::string::npos)
            die("%s: not answered 200 with an id", what.c_str());
        std::string id = resp.substr(body + 4);
        while (!id.empty() && (id.back() == '\n' || id.back() == '\r'))
            id.pop_back();
        if (id.empty() || id.size() > 256)
            die("%s: the id is empty or too long", what.c_str());
        return id;
    }

    Conn &openConn(const Url &url)
    {
        auto c = std::make_unique<Conn>();
        c->index = uint32_t(conns_.size());
        c->url = &url;
        c->tStart = nowNs();
        conns_.push_back(std::move(c));
        Conn &conn = *conns_.back();
        ++connecting_;

        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            failConn(conn, "socket", errno);
            return conn;
        }
        conn.fd = fd;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (o_.mode == Mode::Latency)
            setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
        if (o_.srcIps > 1 || o_.srcIpFirst > 0) {
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                       sizeof one);
            sockaddr_in src{};
            src.sin_family = AF_INET;
            src.sin_addr.s_addr =
                htonl(0x7f000001u + uint32_t(o_.srcIpFirst) +
                      uint32_t(conn.index % unsigned(o_.srcIps)));
            if (bind(fd, reinterpret_cast<sockaddr *>(&src), sizeof src) < 0) {
                failConn(conn, "bind", errno);
                return conn;
            }
        }
        int rc = connect(fd, reinterpret_cast<const sockaddr *>(&url.addr),
                         sizeof url.addr);
        if (rc < 0 && errno != EINPROGRESS) {
            failConn(conn, "connect", errno);
            return conn;
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;
        ev.data.u64 = conn.index;
        if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) < 0) {
            failConn(conn, "epoll_ctl", errno);
            return conn;
        }

        std::string target = url.path;
        if (o_.proto == Proto::Peerjs) {
            conn.id = o_.peerjsIdsFromServer ? fetchPeerjsId(url) : newPeerjsId();
            if (target.empty() || target.back() != '/')
                target += '/';
            target += "peerjs?key=" + o_.peerjsKey + "&id=" + conn.id +
                      "&token=lg" + std::to_string(runTag_);
        }
        unsigned char key[16];
        uint64_t k1 = rng_.next(), k2 = rng_.next();
        std::memcpy(key, &k1, 8);
        std::memcpy(key + 8, &k2, 8);
        std::string req;
        req.reserve(256);
        req += "GET " + target + " HTTP/1.1\r\nHost: " + url.hostPort +
               "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
               base64(key, sizeof key) + "\r\nOrigin: " +
               (o_.origin.empty() ? "http://" + url.hostPort : o_.origin) +
               "\r\n\r\n";
        conn.out = std::move(req);
        return conn;
    }

    static std::string base64(const unsigned char *p, size_t n)
    {
        static const char tbl[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        std::string s;
        for (size_t i = 0; i < n; i += 3) {
            uint32_t v = uint32_t(p[i]) << 16;
            if (i + 1 < n)
                v |= uint32_t(p[i + 1]) << 8;
            if (i + 2 < n)
                v |= p[i + 2];
            s += tbl[(v >> 18) & 63];
            s += tbl[(v >> 12) & 63];
            s += i + 1 < n ? tbl[(v >> 6) & 63] : '=';
            s += i + 2 < n ? tbl[v & 63] : '=';
        }
        return s;
    }

    void failConn(Conn &c, const char *what, int err)
    {
        if (c.state == State::Closed)
            return;
        if (failures_ < 5)
            std::fprintf(stderr, "loadgen: session %u (%s): %s: %s\n", c.index,
                         c.url->text.c_str(), what,
                         err ? std::strerror(err) : "closed");
        ++failures_;
        closeConn(c);
    }

    void closeConn(Conn &c)
    {
        if (c.state == State::Closed)
            return;
        if (c.state != State::Open)
            --connecting_;
        else
            --open_;
        c.state = State::Closed;
        if (c.fd >= 0) {
            ::close(c.fd); // also removes it from the epoll set
            c.fd = -1;
        }
        std::string().swap(c.in);
        std::string().swap(c.out);
        std::string().swap(c.frag);
    }

    void markDirty(Conn &c)
    {
        if (!c.dirty) {
            c.dirty = true;
            dirty_.push_back(c.index);
        }
    }

    void flush(Conn &c)
    {
        while (c.fd >= 0 && c.writable && c.outOff < c.out.size()) {
            ssize_t n = ::write(c.fd, c.out.data() + c.outOff,
                                c.out.size() - c.outOff);
            if (n > 0) {
                c.outOff += size_t(n);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && errno == EAGAIN) {
                c.writable = false; // EPOLLOUT (edge) resumes
            } else {
                failConn(c, "write", errno);
                return;
            }
        }
        if (c.outOff == c.out.size()) {
            c.out.clear();
            c.outOff = 0;
        } else if (c.outOff > (1u << 16) && c.outOff * 2 > c.out.size()) {
            c.out.erase(0, c.outOff);
            c.outOff = 0;
        }
    }

    void flushDirty()
    {
        for (uint32_t i : dirty_) {
            Conn &c = *conns_[i];
            c.dirty = false;
            flush(c);
        }
        dirty_.clear();
    }

    // Appends one masked client frame.
    void appendFrame(Conn &c, uint8_t opcode, const char *data, size_t len)
    {
        unsigned char hdr[14];
        size_t h = 0;
        hdr[h++] = uint8_t(0x80 | opcode);
        if (len < 126) {
            hdr[h++] = uint8_t(0x80 | len);
        } else if (len < 65536) {
            hdr[h++] = 0x80 | 126;
            hdr[h++] = uint8_t(len >> 8);
            hdr[h++] = uint8_t(len);
        } else {
            hdr[h++] = 0x80 | 127;
            for (int i = 7; i >= 0; --i)
                hdr[h++] = uint8_t(uint64_t(len) >> (8 * i));
        }
        uint32_t mask = uint32_t(rng_.next());
        std::memcpy(hdr + h, &mask, 4);
        h += 4;
        size_t at = c.out.size();
        c.out.append(reinterpret_cast<char *>(hdr), h);
        c.out.append(data, len);
        char *p = &c.out[at + h];
        uint64_t m8 = uint64_t(mask) | (uint64_t(mask) << 32);
        size_t i = 0;
        for (; i + 8 <= len; i += 8) {
            uint64_t w;
            std::memcpy(&w, p + i, 8);
            w ^= m8;
            std::memcpy(p + i, &w, 8);
        }
        const unsigned char *mk = reinterpret_cast<unsigned char *>(&mask);
        for (; i < len; ++i)
            p[i] = char(p[i] ^ mk[i & 3]);
        markDirty(c);
    }

    void sendText(Conn &c, const char *data, size_t len)
    {
        appendFrame(c, 0x1, data, len);
    }

    // ---- the event loop

    // Waits up to timeoutMs for events and handles them.
    void poll(int timeoutMs)
    {
        flushDirty();
        epoll_event evs[512];
        int n = epoll_wait(ep_, evs, 512, timeoutMs);
        for (int i = 0; i < n; ++i) {
            if (evs[i].data.u64 == kTimerTag) {
                uint64_t ticks = 0;
                if (::read(timerFd_, &ticks, sizeof ticks) == sizeof ticks)
                    onTimer(ticks);
                continue;
            }
            Conn &c = *conns_[evs[i].data.u64];
            if (c.state == State::Closed)
                continue;
            uint32_t e = evs[i].events;
            if (c.state == State::Connecting) {
                if (e & (EPOLLERR | EPOLLHUP)) {
                    int err = 0;
                    socklen_t len = sizeof err;
                    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
                    failConn(c, "connect", err);
                    continue;
                }
                if (e & EPOLLOUT) {
                    c.state = State::Upgrading;
                    c.writable = true;
                    flush(c);
                }
                continue;
            }
            if (e & EPOLLOUT) {
                c.writable = true;
                flush(c);
            }
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                readConn(c);
        }
        flushDirty();
    }

    // read(), or in latency mode recvmsg() with the kernel's receive
    // timestamp of the bytes read (SO_TIMESTAMPNS: for TCP, that of the
    // last segment taken) kept in c.rxNs on this process's monotonic clock.
    ssize_t readSome(Conn &c)
    {
        if (o_.mode != Mode::Latency)
            return ::read(c.fd, readBuf_.data(), readBuf_.size());
        iovec iov{readBuf_.data(), readBuf_.size()};
        alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(timespec))];
        msghdr mh{};
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctl;
        mh.msg_controllen = sizeof ctl;
        ssize_t n = ::recvmsg(c.fd, &mh, 0);
        c.rxNs = 0;
        for (cmsghdr *cm = CMSG_FIRSTHDR(&mh); n > 0 && cm;
             cm = CMSG_NXTHDR(&mh, cm)) {
            if (cm->cmsg_level == SOL_SOCKET &&
                cm->cmsg_type == SCM_TIMESTAMPNS) {
                timespec ts;
                std::memcpy(&ts, CMSG_DATA(cm), sizeof ts);
                int64_t real = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
                if (real > 0)
                    c.rxNs = uint64_t(real - realMinusMono_);
            }
        }
        return n;
    }

    // CLOCK_REALTIME - CLOCK_MONOTONIC, from the closest of a few readings.
    void sampleClockOffset()
    {
        uint64_t best = UINT64_MAX;
        for (int i = 0; i < 5; ++i) {
            timespec a, r, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            clock_gettime(CLOCK_REALTIME, &r);
            clock_gettime(CLOCK_MONOTONIC, &b);
            int64_t ma = int64_t(a.tv_sec) * 1000000000 + a.tv_nsec;
            int64_t mb = int64_t(b.tv_sec) * 1000000000 + b.tv_nsec;
            int64_t rr = int64_t(r.tv_sec) * 1000000000 + r.tv_nsec;
            if (uint64_t(mb - ma) < best) {
                best = uint64_t(mb - ma);
                realMinusMono_ = rr - (ma + (mb - ma) / 2);
            }
        }
    }

    void readConn(Conn &c)
    {
        for (;;) {
            ssize_t n = readSome(c);
            if (n > 0) {
                if (c.state == State::Upgrading) {
                    c.in.append(readBuf_.data(), size_t(n));
                    if (!parseUpgrade(c))
                        return;
                } else if (c.in.empty()) {
                    size_t used = parseFrames(c, readBuf_.data(), size_t(n));
                    if (c.state == State::Closed)
                        return;
                    c.in.assign(readBuf_.data() + used, size_t(n) - used);
                } else {
                    c.in.append(readBuf_.data(), size_t(n));
                    size_t used = parseFrames(c, c.in.data(), c.in.size());
                    if (c.state == State::Closed)
                        return;
                    c.in.erase(0, used);
                }
                if (size_t(n) < readBuf_.size())
                    return; // drained for now; the next edge wakes us
            } else if (n == 0) {
                failConn(c, "server closed the connection", 0);
                return;
            } else if (errno == EINTR) {
                continue;
            } else if (errno == EAGAIN) {
                return;
            } else {
                failConn(c, "read", errno);
                return;
            }
        }
    }

    // Returns false when the connection was closed.
    bool parseUpgrade(Conn &c)
    {
        size_t end = c.in.find("\r\n\r\n");
        if (end == std::string::npos) {
            if (c.in.size() > 16384) {
                failConn(c, "oversized upgrade response", 0);
                return false;
            }
            return true;
        }
        if (c.in.compare(0, 12, "HTTP/1.1 101") != 0) {
            if (failures_ < 5)
                std::fprintf(stderr, "loadgen: upgrade refused: %.*s\n",
                             int(c.in.find("\r\n")), c.in.c_str());
            failConn(c, "upgrade", 0);
            return false;
        }
        c.state = State::Hello;
        std::string rest = c.in.substr(end + 4);
        c.in.clear();
        if (!rest.empty()) {
            size_t used = parseFrames(c, rest.data(), rest.size());
            if (c.state == State::Closed)
                return false;
            c.in.assign(rest.data() + used, rest.size() - used);
        }
        return true;
    }

    // Parses whole server frames; returns the bytes consumed.
    size_t parseFrames(Conn &c, const char *data, size_t len)
    {
        size_t pos = 0;
        while (len - pos >= 2) {
            const unsigned char *p =
                reinterpret_cast<const unsigned char *>(data + pos);
            bool fin = p[0] & 0x80;
            uint8_t op = p[0] & 0x0f;
            bool masked = p[1] & 0x80;
            uint64_t plen = p[1] & 0x7f;
            size_t h = 2;
            if (plen == 126) {
                if (len - pos < 4)
                    break;
                plen = (uint64_t(p[2]) << 8) | p[3];
                h = 4;
            } else if (plen == 127) {
                if (len - pos < 10)
                    break;
                plen = 0;
                for (int i = 0; i < 8; ++i)
                    plen = (plen << 8) | p[2 + i];
                h = 10;
            }
            if (masked)
                h += 4;
            if (plen > (64u << 20)) {
                failConn(c, "oversized frame", 0);
                return pos;
            }
            if (len - pos < h + plen)
                break;
            char *payload = const_cast<char *>(data + pos + h);
            if (masked) {
                const unsigned char *mk = p + h - 4;
                for (uint64_t i = 0; i < plen; ++i)
                    payload[i] = char(payload[i] ^ mk[i & 3]);
            }
            pos += h + size_t(plen);
            switch (op) {
            case 0x0: // continuation
                c.frag.append(payload, size_t(plen));
                if (fin) {
                    std::string whole;
                    whole.swap(c.frag);
                    onMessage(c, whole);
                }
                break;
            case 0x1:
            case 0x2:
                if (fin)
                    onMessage(c, std::string_view(payload, size_t(plen)));
                else
                    c.frag.assign(payload, size_t(plen));
                break;
            case 0x8:
                failConn(c, "server sent close", 0);
                return pos;
            case 0x9:
                appendFrame(c, 0xA, payload, size_t(plen));
                break;
            default:
                break;
            }
            if (c.state == State::Closed)
                return pos;
        }
        return pos;
    }

    void onMessage(Conn &c, std::string_view msg)
    {
        if (c.state == State::Hello) {
            if (o_.proto == Proto::Dwrtc) {
                if (msg.find("WebSocketIdMessage") == std::string_view::npos) {
                    failConn(c, "expected WebSocketIdMessage", 0);
                    return;
                }
                std::string_view id = jsonString(msg, "id");
                if (id.empty()) {
                    failConn(c, "WebSocketIdMessage without id", 0);
                    return;
                }
                c.id.assign(id);
            } else {
                std::string_view type = jsonString(msg, "type");
                if (type != "OPEN") {
                    if (failures_ < 5)
                        std::fprintf(stderr, "loadgen: peerjs said %.*s\n",
                                     int(std::min<size_t>(msg.size(), 200)),
                                     msg.data());
                    failConn(c, "expected OPEN", 0);
                    return;
                }
            }
            c.state = State::Open;
            c.tOpen = nowNs();
            --connecting_;
            ++open_;
            onOpen(c);
            return;
        }
        size_t at = msg.find("LG1 ");
        if (at != std::string_view::npos) {
            onBenchMessage(c, msg.substr(at + 4));
            return;
        }
        onOtherMessage(c, msg);
    }

    // ---- mode hooks

    void onOpen(Conn &c)
    {
        handshake_.add(c.tOpen - c.tStart);
    }

    void onOtherMessage(Conn &c, std::string_view msg)
    {
        bool notFound = msg.find("not found") != std::string_view::npos;
        if (o_.mode == Mode::Cold && notFound && c.index == coldSender_) {
            ++coldNotFound_;
            coldRetryAt_ = nowNs() + 2000000; // 2 ms
            return;
        }
        ++otherMessages_;
        if (otherMessages_ <= 3)
            std::fprintf(stderr, "loadgen: unexpected message on %u: %.*s\n",
                         c.index, int(std::min<size_t>(msg.size(), 300)),
                         msg.data());
    }

    void onBenchMessage(Conn &c, std::string_view body)
    {
        uint64_t now = nowNs();
        char tmp[80];
        size_t n = std::min(body.size(), sizeof tmp - 1);
        std::memcpy(tmp, body.data(), n);
        tmp[n] = '\0';
        unsigned long long pair = 0, seq = 0, sent = 0;
        if (std::sscanf(tmp, "%llu %llu %llu", &pair, &seq, &sent) != 3) {
            ++otherMessages_;
            return;
        }
        if (o_.mode == Mode::Cold) {
            if (c.index == coldReceiver_ && coldWaiting_) {
                coldWaiting_ = false;
                coldDelivered_ = now;
            }
            return;
        }
        if (pair >= pairs_.size() || !c.receiver) {
            ++otherMessages_;
            return;
        }
        Pair &p = pairs_[pair];
        if (p.seenAny && seq <= p.lastSeqSeen)
            ++reordered_;
        p.seenAny = true;
        p.lastSeqSeen = std::max<uint64_t>(p.lastSeqSeen, seq);
        bool inWindow = sent >= measureStart_ && sent < measureEnd_;
        if (inWindow) {
            latency_.add(now - sent);
            ++receivedInWindow_;
            if (c.rxNs >= sent && c.rxNs <= now)
                rxLatency_.add(c.rxNs - sent);
            if (!o_.samplesPath.empty() && samples_.size() < kMaxSamples)
                samples_.push_back({uint32_t(pair), seq, sent, c.rxNs, now});
        }
        if (now >= measureStart_ && now < measureEnd_)
            ++arrivedInWindow_;
        if (seq >= p.stallSeq) {
            --p.outstanding;
            p.lastProgress = now;
            if (o_.mode == Mode::Throughput && sending_)
                while (p.outstanding < o_.window)
                    sendBench(p, now);
        }
    }

    void onTimer(uint64_t ticks)
    {
        if (!sending_ || pairs_.empty())
            return;
        uint64_t now = nowNs();
        // Catch up after a stall, but never by more than a second's worth.
        ticks = std::min<uint64_t>(ticks, uint64_t(o_.rate) + 1);
        for (uint64_t i = 0; i < ticks; ++i) {
            Pair &p = pairs_[rr_];
            rr_ = (rr_ + 1) % pairs_.size();
            // stamped and written at once: the time is the write's
            sendBench(p, i ? nowNs() : now);
            flush(*conns_[p.sender]);
        }
    }

    void sendBench(Pair &p, uint64_t now)
    {
        Conn &s = *conns_[p.sender];
        Conn &r = *conns_[p.receiver];
        if (s.state != State::Open || r.state != State::Open)
            return;
        uint64_t seq = p.nextSeq++;
        ++p.outstanding;
        if (now >= measureStart_ && now < measureEnd_)
            ++sentInWindow_;
        ++sentTotal_;
        char body[96];
        int bl = std::snprintf(body, sizeof body, "LG1 %u %llu %llu ",
                               unsigned(&p - pairs_.data()),
                               (unsigned long long)seq,
                               (unsigned long long)now);
        msg_.clear();
        if (o_.proto == Proto::Dwrtc) {
            msg_ += "{\"type\":\"offer\",\"recipientSessionId\":\"";
            msg_ += r.id;
            msg_ += "\",\"messageBody\":\"";
            msg_.append(body, size_t(bl));
            msg_ += pad_;
            msg_ += "\"}";
        } else {
            msg_ += "{\"type\":\"OFFER\",\"dst\":\"";
            msg_ += r.id;
            msg_ += "\",\"payload\":{\"b\":\"";
            msg_.append(body, size_t(bl));
            msg_ += pad_;
            msg_ += "\"}}";
        }
        sendText(s, msg_.data(), msg_.size());
    }

    // Opens sessions from the factory until `target` are open (or failed),
    // with at most --concurrency handshakes in flight. Returns false on
    // timeout.
    template <class Factory>
    bool openSessions(size_t target, uint64_t deadline, Factory make)
    {
        while (true) {
            size_t done = open_ + size_t(failures_);
            while (started_ < target && connecting_ < size_t(o_.concurrency)) {
                make(started_);
                ++started_;
            }
            if (open_ + size_t(failures_) >= target && connecting_ == 0)
                return true;
            if (nowNs() >= deadline)
                return false;
            (void)done;
            poll(10);
        }
    }

    void printCommon(FILE *f, const char *bench)
    {
        std::fprintf(f, "{\"bench\":\"%s\",\"label\":\"%s\",\"proto\":\"%s\"",
                     bench, o_.label.c_str(),
                     o_.proto == Proto::Dwrtc ? "dwrtc" : "peerjs");
    }

    static void printLatency(FILE *f, const char *prefix, const Histogram &h)
    {
        std::fprintf(f,
                     ",\"%scount\":%llu,\"%sp50_us\":%.1f,\"%sp90_us\":%.1f,"
                     "\"%sp99_us\":%.1f,\"%sp999_us\":%.1f,\"%smax_us\":%.1f,"
                     "\"%smean_us\":%.1f",
                     prefix, (unsigned long long)h.count(), prefix,
                     h.percentile(0.50) / 1e3, prefix, h.percentile(0.90) / 1e3,
                     prefix, h.percentile(0.99) / 1e3, prefix,
                     h.percentile(0.999) / 1e3, prefix, h.max() / 1e3, prefix,
                     h.mean() / 1e3);
    }

    // ---- latency and throughput

    int runMessages()
    {
        const Url &a = o_.urlA;
        const Url &b = o_.urlB[0];
        size_t n = size_t(o_.pairs);
        conns_.reserve(2 * n);
        pairs_.resize(n);
        uint64_t t0 = nowNs();
        uint64_t deadline = t0 + uint64_t(o_.connectTimeout * 1e9);
        bool ok = openSessions(2 * n, deadline, [&](size_t i) {
            Conn &c = openConn(i % 2 ? b : a);
            c.pair = int(i / 2);
            c.receiver = i % 2;
            if (c.receiver)
                pairs_[i / 2].receiver = c.index;
            else
                pairs_[i / 2].sender = c.index;
        });
        if (!ok || failures_ > 0) {
            printCommon(stdout, o_.mode == Mode::Latency ? "latency"
                                                         : "throughput");
            std::printf(",\"error\":\"%d of %zu sessions failed to open\"}\n",
                        failures_ + int(connecting_), 2 * n);
            return 1;
        }
        double setupS = double(nowNs() - t0) / 1e9;

        uint64_t start = nowNs();
        measureStart_ = start + uint64_t(o_.warmup * 1e9);
        measureEnd_ = measureStart_ + uint64_t(o_.seconds * 1e9);
        sending_ = true;

        if (o_.mode == Mode::Latency) {
            timerFd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
            itimerspec its{};
            long period = std::max(1000L, long(1e9 / o_.rate));
            its.it_interval.tv_sec = period / 1000000000L;
            its.it_interval.tv_nsec = period % 1000000000L;
            its.it_value = its.it_interval;
            timerfd_settime(timerFd_, 0, &its, nullptr);
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = kTimerTag;
            epoll_ctl(ep_, EPOLL_CTL_ADD, timerFd_, &ev);
        } else {
            for (Pair &p : pairs_) {
                p.lastProgress = start;
                while (p.outstanding < o_.window)
                    sendBench(p, start);
            }
        }

        ProcSample s0, s1;
        double c0 = 0, c1 = 0;
        uint64_t m0 = 0, m1 = 0;
        uint64_t w0 = 0, w1 = 0;
        bool inWindow = false;
        uint64_t nextStallCheck = start + 100000000;
        uint64_t nextClockSample = 0;
        for (;;) {
            uint64_t now = nowNs();
            if (o_.mode == Mode::Latency && now >= nextClockSample) {
                sampleClockOffset(); // follows NTP's slewing of the clock
                nextClockSample = now + 100000000;
            }
            if (!inWindow && now >= measureStart_ && w0 == 0) {
                s0 = sampleProcs(o_.serverPids);
                c0 = selfCpuUs();
                m0 = machineBusyTicks();
                w0 = nowNs();
                inWindow = true;
            }
            if (inWindow && now >= measureEnd_) {
                s1 = sampleProcs(o_.serverPids);
                c1 = selfCpuUs();
                m1 = machineBusyTicks();
                w1 = nowNs();
                inWindow = false;
                sending_ = false;
                break;
            }
            if (o_.mode == Mode::Throughput && now >= nextStallCheck) {
                nextStallCheck = now + 100000000;
                checkStalls(now);
            }
            poll(1);
        }
        // Drain: wait for what is still on its way.
        uint64_t drainEnd = nowNs() + uint64_t(o_.drain * 1e9);
        while (nowNs() < drainEnd && outstandingTotal() > 0)
            poll(5);

        double windowS = double(w1 - w0) / 1e9;
        uint64_t lost = sentInWindow_ > receivedInWindow_
                            ? sentInWindow_ - receivedInWindow_
                            : 0;
        double serverCpu = cpuUs(s1.cpuTicks - s0.cpuTicks);
        uint64_t relayed = arrivedInWindow_;
        printCommon(stdout, o_.mode == Mode::Latency ? "latency" : "throughput");
        std::printf(",\"url_a\":\"%s\",\"url_b\":\"%s\",\"pairs\":%zu,"
                    "\"size\":%d,\"setup_s\":%.2f,\"window_s\":%.3f",
                    a.text.c_str(), b.text.c_str(), n, o_.size, setupS,
                    windowS);
        if (o_.mode == Mode::Latency)
            std::printf(",\"rate\":%.0f", o_.rate);
        else
            std::printf(",\"window\":%d", o_.window);
        std::printf(",\"sent\":%llu,\"received\":%llu,\"lost\":%llu,"
                    "\"reordered\":%llu,\"other_messages\":%llu,"
                    "\"msgs_per_s\":%.0f",
                    (unsigned long long)sentInWindow_,
                    (unsigned long long)receivedInWindow_,
                    (unsigned long long)lost, (unsigned long long)reordered_,
                    (unsigned long long)otherMessages_,
                    double(relayed) / windowS);
        printLatency(stdout, "", latency_);
        if (o_.mode == Mode::Latency)
            printLatency(stdout, "rx_", rxLatency_);
        if (!o_.serverPids.empty())
            std::printf(",\"server_cpu_s\":%.3f,\"server_cpu_util\":%.3f,"
                        "\"server_cpu_us_per_msg\":%.3f",
                        serverCpu / 1e6, serverCpu / 1e6 / windowS,
                        relayed ? serverCpu / double(relayed) : 0.0);
        double machine = cpuUs(m1 - m0) / 1e6 / windowS;
        double others = machine - (c1 - c0) / 1e6 / windowS -
                        (o_.serverPids.empty() ? 0.0 : serverCpu / 1e6 / windowS);
        std::printf(",\"client_cpu_util\":%.3f,\"machine_busy_cores\":%.2f,"
                    "\"other_busy_cores\":%.2f}\n",
                    (c1 - c0) / 1e6 / windowS, machine, std::max(0.0, others));
        std::fflush(stdout);
        writeSamples();
        return 0;
    }

    void writeSamples() const
    {
        if (o_.samplesPath.empty())
            return;
        FILE *f = std::fopen(o_.samplesPath.c_str(), "w");
        if (!f) {
            std::fprintf(stderr, "loadgen: cannot write %s\n",
                         o_.samplesPath.c_str());
            return;
        }
        for (const Sample &s : samples_)
            std::fprintf(f, "%u %llu %llu %llu %llu\n", s.pair,
                         (unsigned long long)s.seq,
                         (unsigned long long)s.sent,
                         (unsigned long long)s.rx,
                         (unsigned long long)s.arrived);
        std::fclose(f);
    }

    int64_t outstandingTotal() const
    {
        int64_t t = 0;
        for (const Pair &p : pairs_)
            t += std::max<int64_t>(p.outstanding, 0);
        return t;
    }

    // A pair that made no progress for 2 s writes its outstanding
    // messages off as lost, so one lost message cannot stop a pair.
    void checkStalls(uint64_t now)
    {
        for (Pair &p : pairs_) {
            if (p.outstanding > 0 && now - p.lastProgress > 2000000000ull) {
                p.outstanding = 0;
                p.stallSeq = p.nextSeq;
                p.lastProgress = now;
                ++stalls_;
                if (sending_)
                    while (p.outstanding < o_.window)
                        sendBench(p, now);
            }
        }
    }

    // ---- accept

    int runAccept()
    {
        size_t k = size_t(o_.sessions.back());
        conns_.reserve(k);
        ProcSample s0 = sampleProcs(o_.serverPids);
        uint64_t t0 = nowNs();
        uint64_t deadline = t0 + uint64_t(o_.seconds * 1e9);
        bool complete = openSessions(k, deadline, [&](size_t i) {
            openConn(o_.urlB[i % o_.urlB.size()]);
        });
        uint64_t t1 = nowNs();
        ProcSample s1 = sampleProcs(o_.serverPids);
        double el = double(t1 - t0) / 1e9;
        printCommon(stdout, "accept");
        std::printf(",\"url\":\"%s\",\"sessions\":%zu,\"opened\":%zu,"
                    "\"failed\":%d,\"complete\":%s,\"concurrency\":%d,"
                    "\"elapsed_s\":%.3f,\"accepts_per_s\":%.0f",
                    o_.urlB[0].text.c_str(), k, open_, failures_,
                    complete ? "true" : "false", o_.concurrency, el,
                    double(open_) / el);
        printLatency(stdout, "handshake_", handshake_);
        if (!o_.serverPids.empty() && open_)
            std::printf(",\"server_cpu_us_per_accept\":%.1f",
                        cpuUs(s1.cpuTicks - s0.cpuTicks) / double(open_));
        std::printf("}\n");
        std::fflush(stdout);
        closeAll();
        return 0;
    }

    // ---- idle

    int runIdle()
    {
        size_t k = size_t(o_.sessions.back());
        conns_.reserve(k);
        ProcSample base = sampleProcs(o_.serverPids);
        uint64_t t0 = nowNs();
        uint64_t deadline = t0 + uint64_t(o_.connectTimeout * 1e9);
        uint64_t prevRss = base.rssKib;
        size_t prevK = 0;
        int rc = 0;
        for (int target : o_.sessions) {
            uint64_t stepStart = nowNs();
            bool complete = openSessions(size_t(target), deadline, [&](size_t) {
                openConn(o_.urlB[0]);
            });
            uint64_t opened = nowNs();
            if (o_.ctlOut >= 0) {
                // a child of --procs: the parent reads the servers
                char line[128];
                int n = std::snprintf(line, sizeof line, "%zu %d %d %.3f\n",
                                      open_, failures_, complete ? 1 : 0,
                                      double(opened - stepStart) / 1e9);
                if (::write(o_.ctlOut, line, size_t(n)) != n ||
                    settle(3600, true) != 'n')
                    break;
                continue;
            }
            settle(o_.settle);
            ProcSample s = sampleProcs(o_.serverPids);
            printCommon(stdout, "idle");
            std::printf(
                ",\"url\":\"%s\",\"sessions\":%d,\"open\":%zu,\"failed\":%d,"
                "\"complete\":%s,\"open_step_s\":%.2f,\"rss_base_kib\":%llu,"
                "\"rss_kib\":%llu,\"bytes_per_session\":%.0f,"
                "\"bytes_per_session_step\":%.0f}\n",
                o_.urlB[0].text.c_str(), target, open_, failures_,
                complete ? "true" : "false", double(opened - stepStart) / 1e9,
                (unsigned long long)base.rssKib, (unsigned long long)s.rssKib,
                open_ ? (double(s.rssKib) - double(base.rssKib)) * 1024.0 /
                            double(open_)
                      : 0.0,
                open_ > prevK ? (double(s.rssKib) - double(prevRss)) * 1024.0 /
                                    double(open_ - prevK)
                              : 0.0);
            std::fflush(stdout);
            prevRss = s.rssKib;
            prevK = open_;
            if (!complete) {
                rc = 1;
                break;
            }
        }
        if (o_.ctlOut < 0)
            settle(o_.hold);
        closeAll();
        return rc;
    }

    // Runs the loop for a while (pings are answered, PeerJS sessions get
    // a heartbeat every 20 s); with untilCommand, until the parent of
    // --procs sends a command, which it returns (0 on timeout or EOF).
    char settle(double seconds, bool untilCommand = false)
    {
        uint64_t end = nowNs() + uint64_t(seconds * 1e9);
        uint64_t nextBeat = nowNs() + 20000000000ull;
        while (nowNs() < end) {
            poll(50);
            if (untilCommand) {
                char cmd = 0;
                ssize_t n = ::read(o_.ctlIn, &cmd, 1);
                if (n == 1)
                    return cmd;
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                    return 0;
            }
            if (o_.proto == Proto::Peerjs && nowNs() >= nextBeat) {
                nextBeat = nowNs() + 20000000000ull;
                static const char beat[] = "{\"type\":\"HEARTBEAT\"}";
                for (auto &c : conns_)
                    if (c->state == State::Open)
                        sendText(*c, beat, sizeof beat - 1);
            }
        }
        return 0;
    }

    void closeAll()
    {
        static const char code[2] = {char(0x03), char(0xe8)}; // 1000
        for (auto &c : conns_)
            if (c->state == State::Open)
                appendFrame(*c, 0x8, code, 2);
        flushDirty();
        for (auto &c : conns_)
            closeConn(*c);
    }

    // ---- cold

    // Waits until conn is open (or failed); false on failure or timeout.
    bool waitOpen(Conn &c, uint64_t deadline)
    {
        while (c.state != State::Open && c.state != State::Closed &&
               nowNs() < deadline)
            poll(5);
        return c.state == State::Open;
    }

    int runCold()
    {
        size_t iters = o_.iterations > 0 ? size_t(o_.iterations)
                                         : o_.urlB.size();
        iters = std::min<size_t>(iters, 100000);
        Histogram cold, warm;
        size_t failed = 0;
        uint64_t retries = 0;
        std::vector<uint64_t> samples;
        uint64_t runEnd = nowNs() + uint64_t(o_.seconds * 1e9);
        for (size_t it = 0; it < iters && nowNs() < runEnd; ++it) {
            const Url &b = o_.urlB[it % o_.urlB.size()];
            uint64_t deadline = nowNs() + 10000000000ull; // 10 s per sample
            Conn &s = openConn(o_.urlA);
            Conn &r = openConn(b);
            if (!waitOpen(s, deadline) || !waitOpen(r, deadline)) {
                ++failed;
                closeConn(s);
                closeConn(r);
                continue;
            }
            coldSender_ = s.index;
            coldReceiver_ = r.index;
            coldNotFound_ = 0;
            // The receiver's session opened at r.tOpen; send at once.
            uint64_t tOpen = std::max(r.tOpen, s.tOpen);
            pairs_.assign(1, Pair{});
            pairs_[0].sender = s.index;
            pairs_[0].receiver = r.index;
            coldWaiting_ = true;
            coldRetryAt_ = 0;
            sendBench(pairs_[0], nowNs());
            while (coldWaiting_ && nowNs() < deadline &&
                   s.state == State::Open && r.state == State::Open) {
                if (coldRetryAt_ && nowNs() >= coldRetryAt_) {
                    coldRetryAt_ = 0;
                    sendBench(pairs_[0], nowNs());
                }
                poll(1);
            }
            if (coldWaiting_) {
                ++failed;
            } else {
                uint64_t d = coldDelivered_ - tOpen;
                cold.add(d);
                samples.push_back(d);
                retries += coldNotFound_;
                // The same pair once more: the warm path, for comparison.
                coldWaiting_ = true;
                uint64_t t = nowNs();
                sendBench(pairs_[0], t);
                while (coldWaiting_ && nowNs() < deadline &&
                       r.state == State::Open)
                    poll(1);
                if (!coldWaiting_)
                    warm.add(coldDelivered_ - t);
            }
            coldWaiting_ = false;
            closeAll();
        }
        printCommon(stdout, "cold");
        std::printf(",\"url_a\":\"%s\",\"nodes\":%zu,\"iterations\":%zu,"
                    "\"failed\":%zu,\"not_found_retries\":%llu",
                    o_.urlA.text.c_str(), o_.urlB.size(), iters, failed,
                    (unsigned long long)retries);
        printLatency(stdout, "cold_", cold);
        printLatency(stdout, "warm_", warm);
        std::printf(",\"cold_samples_us\":[");
        for (size_t i = 0; i < samples.size(); ++i)
            std::printf("%s%.1f", i ? "," : "", samples[i] / 1e3);
        std::printf("]}\n");
        std::fflush(stdout);
        return failed ? 1 : 0;
    }

    const Options &o_;
    Rng rng_;
    int ep_ = -1;
    int timerFd_ = -1;
    uint64_t runTag_ = 0;
    std::vector<std::unique_ptr<Conn>> conns_;
    std::vector<uint32_t> dirty_;
    std::vector<char> readBuf_;
    std::string pad_;
    std::string msg_;
    std::vector<Pair> pairs_;
    size_t rr_ = 0;

    size_t started_ = 0;
    size_t connecting_ = 0;
    size_t open_ = 0;
    int failures_ = 0;

    bool sending_ = false;
    uint64_t measureStart_ = UINT64_MAX;
    uint64_t measureEnd_ = UINT64_MAX;
    uint64_t sentInWindow_ = 0;
    uint64_t sentTotal_ = 0;
    uint64_t receivedInWindow_ = 0;
    uint64_t arrivedInWindow_ = 0;
    uint64_t reordered_ = 0;
    uint64_t otherMessages_ = 0;
    uint64_t stalls_ = 0;
    Histogram latency_;
    Histogram rxLatency_; // to the receiving socket (kernel timestamp)
    int64_t realMinusMono_ = 0;
    Histogram handshake_;

    struct Sample {
        uint32_t pair;
        uint64_t seq, sent, rx, arrived;
    };
    static constexpr size_t kMaxSamples = 10000000;
    std::vector<Sample> samples_;

    uint32_t coldSender_ = UINT32_MAX;
    uint32_t coldReceiver_ = UINT32_MAX;
    bool coldWaiting_ = false;
    uint64_t coldDelivered_ = 0;
    uint64_t coldRetryAt_ = 0;
    uint64_t coldNotFound_ = 0;
};

// Idle mode over --procs client processes: each child opens its share of
// every checkpoint from addresses of its own and reports; once all have,
// this process reads the servers' memory, prints the line, and lets them
// go on to the next checkpoint. One process can hold only as many
// sessions as its descriptor limit allows.
int runIdleProcs(const Options &o)
{
    struct Child {
        pid_t pid = -1;
        int cmd = -1;    // commands to it
        FILE *in = nullptr; // its reports
        size_t open = 0;
        int failed = 0;
        bool complete = false;
        double openS = 0;
    };
    std::vector<Child> kids(size_t(o.procs));
    ProcSample base = sampleProcs(o.serverPids);
    std::fflush(stdout);
    for (size_t i = 0; i < kids.size(); ++i) {
        int down[2], up[2];
        if (pipe2(down, O_CLOEXEC) < 0 || pipe2(up, O_CLOEXEC) < 0)
            die("pipe failed");
        pid_t pid = fork();
        if (pid < 0)
            die("fork failed");
        if (pid == 0) {
            for (size_t j = 0; j < i; ++j) {
                ::close(kids[j].cmd);
                std::fclose(kids[j].in);
            }
            ::close(down[1]);
            ::close(up[0]);
            fcntl(down[0], F_SETFL, O_NONBLOCK);
            Options c = o;
            c.procs = 1;
            c.ctlIn = down[0];
            c.ctlOut = up[1];
            c.srcIpFirst = int(i) * o.srcIps;
            c.serverPids.clear();
            for (int &k : c.sessions)
                k = k / o.procs + (int(i) < k % o.procs ? 1 : 0);
            int rc;
            {
                Engine e(c);
                rc = e.run();
            }
            std::fflush(stdout);
            _exit(rc);
        }
        ::close(down[0]);
        ::close(up[1]);
        kids[i].pid = pid;
        kids[i].cmd = down[1];
        kids[i].in = fdopen(up[0], "r");
    }
    signal(SIGPIPE, SIG_IGN);
    uint64_t prevRss = base.rssKib;
    size_t prevK = 0;
    int rc = 0;
    for (int target : o.sessions) {
        size_t open = 0;
        int failed = 0;
        bool complete = true;
        double openS = 0;
        for (Child &k : kids) {
            // each child gives up by itself after --connect-timeout
            char line[128];
            if (!k.in || !std::fgets(line, sizeof line, k.in)) {
                complete = false;
                continue;
            }
            int comp = 0;
            std::sscanf(line, "%zu %d %d %lf", &k.open, &k.failed, &comp,
                        &k.openS);
            open += k.open;
            failed += k.failed;
            complete = complete && comp;
            openS = std::max(openS, k.openS);
        }
        uint64_t end = nowNs() + uint64_t(o.settle * 1e9);
        while (nowNs() < end)
            usleep(50000);
        ProcSample s = sampleProcs(o.serverPids);
        std::printf(
            "{\"bench\":\"idle\",\"label\":\"%s\",\"proto\":\"%s\","
            "\"procs\":%d,\"url\":\"%s\",\"sessions\":%d,\"open\":%zu,"
            "\"failed\":%d,\"complete\":%s,\"open_step_s\":%.2f,"
            "\"rss_base_kib\":%llu,\"rss_kib\":%llu,"
            "\"bytes_per_session\":%.0f,\"bytes_per_session_step\":%.0f}\n",
            o.label.c_str(), o.proto == Proto::Dwrtc ? "dwrtc" : "peerjs",
            o.procs, o.urlB[0].text.c_str(), target, open, failed,
            complete ? "true" : "false", openS,
            (unsigned long long)base.rssKib, (unsigned long long)s.rssKib,
            open ? (double(s.rssKib) - double(base.rssKib)) * 1024.0 /
                       double(open)
                 : 0.0,
            open > prevK ? (double(s.rssKib) - double(prevRss)) * 1024.0 /
                               double(open - prevK)
                         : 0.0);
        std::fflush(stdout);
        prevRss = s.rssKib;
        prevK = open;
        bool last = target == o.sessions.back();
        if (!complete)
            rc = 1;
        char cmd = (complete && !last) ? 'n' : 'q';
        if (cmd == 'q') {
            uint64_t hold = nowNs() + uint64_t(o.hold * 1e9);
            while (complete && nowNs() < hold)
                usleep(50000);
        }
        for (Child &k : kids)
            if (::write(k.cmd, &cmd, 1) != 1)
                rc = 1;
        if (cmd == 'q')
            break;
    }
    for (Child &k : kids) {
        ::close(k.cmd);
        if (k.in)
            std::fclose(k.in);
        int st = 0;
        waitpid(k.pid, &st, 0);
    }
    return rc;
}

} // namespace

int main(int argc, char **argv)
{
    Options o = parseOptions(argc, argv);
    if (o.mode == Mode::Idle && o.procs > 1)
        return runIdleProcs(o);
    Engine engine(o);
    return engine.run();
}
