// bench_dht_scale: a DWRTC network of 100 to 1,000 dhtcore nodes on
// loopback, spread over a few processes, driven only through the C
// interface (dwrtc.h).
//
// For each network size:
//
//   build   child processes (--procs, and enough that none holds more
//           than --per-proc nodes) start their share of the nodes (each joins
//           through the seed node and through a node of its own process
//           started before it), wait until every node has published its
//           record, and open one session per node.
//   first   a probe node that joins last sends one message to sessions on
//           --probes distinct nodes, one at a time: time from submit to
//           delivery at the recipient (DHT lookup of the recipient's node,
//           link connect, delivery), then a second message to the same
//           session (warm: link already open). cold - warm is about the
//           lookup. Same clock: CLOCK_MONOTONIC is system-wide.
//   churn   every child replaces --churn (20%) of its nodes one by one
//           over --churn-seconds, while the probe sends --churn-rate
//           messages/s to sessions on nodes that stay and on the
//           replacements once they have published; delivered / sent.
//
// Results are JSON lines on stdout. Every wait is bounded. The churn line
// also counts lost messages by target (lost_to_stable, lost_to_replacement)
// and the probe's failures by the reason its router logged (missing: the
// lookup found no record; relookup, unreachable, other_node: a cached or
// looked-up address did not lead to the node). BENCH_VERBOSE=1 prints each
// lost or slow message and then sends to every lost target again from the
// probe, the seed and a fresh node, to tell a record that is missing from
// the DHT from one that only some nodes cannot find.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "dwrtc/dwrtc.h"

namespace {

uint64_t nowNs()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

struct Options {
    std::vector<int> sizes{100, 300, 1000};
    int procs = 4;
    int perProc = 100;
    int probes = 200;
    double churn = 0.2;
    double churnSeconds = 20;
    double churnRate = 50;
    double timeout = 5;     // per message
    double buildTimeout = 240;
};

class Samples {
public:
    void add(uint64_t ns) { v_.push_back(ns); }
    size_t count() const { return v_.size(); }
    double ms(double q)
    {
        if (v_.empty())
            return 0;
        std::sort(v_.begin(), v_.end());
        size_t i = size_t(std::ceil(q * double(v_.size())));
        return double(v_[std::clamp<size_t>(i, 1, v_.size()) - 1]) / 1e6;
    }
    void print(const char *p)
    {
        std::printf(",\"%scount\":%zu,\"%sp50_ms\":%.2f,\"%sp90_ms\":%.2f,"
                    "\"%sp99_ms\":%.2f,\"%smax_ms\":%.2f",
                    p, count(), p, ms(0.5), p, ms(0.9), p, ms(0.99), p,
                    ms(1.0));
    }

private:
    std::vector<uint64_t> v_;
};

// ---------------------------------------------------------------- lines

// Line-oriented channel over a socketpair between parent and child.
class Channel {
public:
    explicit Channel(int fd) : fd_(fd) {}
    int fd() const { return fd_; }

    void send(const std::string &line)
    {
        std::string s = line + "\n";
        size_t off = 0;
        while (off < s.size()) {
            ssize_t n = ::write(fd_, s.data() + off, s.size() - off);
            if (n > 0)
                off += size_t(n);
            else if (n < 0 && errno == EINTR)
                continue;
            else if (n < 0 && errno == EAGAIN) {
                pollfd p{fd_, POLLOUT, 0};
                ::poll(&p, 1, 100);
            } else
                return;
        }
    }

    // Reads what is there; false on EOF or error.
    bool fill()
    {
        char buf[65536];
        for (;;) {
            ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n > 0) {
                in_.append(buf, size_t(n));
                if (size_t(n) < sizeof buf)
                    return true;
            } else if (n == 0) {
                return false;
            } else if (errno == EINTR) {
                continue;
            } else {
                return errno == EAGAIN;
            }
        }
    }

    bool nextLine(std::string &line)
    {
        size_t nl = in_.find('\n');
        if (nl == std::string::npos)
            return false;
        line = in_.substr(0, nl);
        in_.erase(0, nl + 1);
        return true;
    }

    // Blocks (bounded) for one line.
    bool waitLine(std::string &line, double seconds)
    {
        uint64_t end = nowNs() + uint64_t(seconds * 1e9);
        while (!nextLine(line)) {
            if (nowNs() >= end)
                return false;
            pollfd p{fd_, POLLIN, 0};
            ::poll(&p, 1, 50);
            if ((p.revents & POLLIN) && !fill())
                return nextLine(line);
            if (p.revents & (POLLHUP | POLLERR))
                return nextLine(line);
        }
        return true;
    }

private:
    int fd_;
    std::string in_;
};

// ---------------------------------------------------------------- nodes

struct Node {
    dwrtc_node *handle = nullptr;
    int efd = -1;
    bool published = false;
    std::string session;
    ~Node() { dwrtc_node_destroy(handle); }
};

struct DrainCtx {
    Node *node;
    void *owner;
};

std::unique_ptr<Node> startNode(const std::vector<unsigned> &bootstrap,
                                int logLevel = DWRTC_LOG_INFO)
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
    dwrtc_options_set_log_level(opt, logLevel);
    for (unsigned port : bootstrap) {
        if (!port)
            continue;
        std::string bs = "127.0.0.1:" + std::to_string(port);
        dwrtc_options_add_bootstrap(opt, bs.data(), bs.size());
    }
    auto n = std::make_unique<Node>();
    int rc = dwrtc_node_create(opt, &n->handle);
    dwrtc_options_destroy(opt);
    if (rc != DWRTC_OK)
        return nullptr;
    n->efd = dwrtc_node_event_fd(n->handle);
    if (dwrtc_node_start(n->handle) != DWRTC_OK)
        return nullptr;
    return n;
}

std::string openSession(Node &n)
{
    char id[DWRTC_SESSION_ID_LEN];
    if (dwrtc_session_open(n.handle, id) != DWRTC_OK)
        return {};
    return std::string(id, sizeof id);
}

void onLogPublished(void *ctx, int, const char *msg, size_t len)
{
    Node *n = static_cast<DrainCtx *>(ctx)->node;
    if (std::string_view(msg, len).find("published its record") !=
        std::string_view::npos)
        n->published = true;
}

// ---------------------------------------------------------------- child

// A child process: runs its share of the network until told to quit.
class Child {
public:
    Child(int fd, int count) : ch_(fd), count_(count)
    {
        fcntl(fd, F_SETFL, O_NONBLOCK);
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        rng_.seed(uint32_t(getpid()) * 2654435761u);
    }

    int run()
    {
        std::string line;
        if (!ch_.waitLine(line, 60) || line.rfind("seed ", 0) != 0)
            return 1;
        seedPort_ = unsigned(std::atoi(line.c_str() + 5));
        for (int i = 0; i < count_; ++i)
            addNode();
        waitPublished(nodes_, 120);
        int ok = 0;
        for (auto &n : nodes_) {
            if (n->published) {
                n->session = openSession(*n);
                ch_.send("session " + n->session);
                ++ok;
            }
        }
        ch_.send("ready " + std::to_string(ok));
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = nullptr;
        epoll_ctl(ep_, EPOLL_CTL_ADD, ch_.fd(), &ev);
        for (;;) {
            if (!loopOnce(50))
                break;
            if (quit_)
                break;
            churnStep();
        }
        // Leave without stopping each node in turn (each stop waits for
        // its record's withdrawal): the process exit ends every thread.
        stopping_.clear(); // waits for stops under way
        std::fflush(nullptr);
        _exit(0);
    }

private:
    std::vector<unsigned> bootstrapPorts()
    {
        std::vector<unsigned> boot{seedPort_};
        if (!nodes_.empty()) {
            std::uniform_int_distribution<size_t> d(0, nodes_.size() - 1);
            boot.push_back(dwrtc_node_dht_port(nodes_[d(rng_)]->handle));
        }
        return boot;
    }

    void addNode() { adopt(startNode(bootstrapPorts())); }

    void adopt(std::unique_ptr<Node> n)
    {
        if (!n)
            return;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = n.get();
        epoll_ctl(ep_, EPOLL_CTL_ADD, n->efd, &ev);
        nodes_.push_back(std::move(n));
    }

    void waitPublished(const std::vector<std::unique_ptr<Node>> &nodes,
                       double seconds)
    {
        uint64_t end = nowNs() + uint64_t(seconds * 1e9);
        while (nowNs() < end) {
            bool all = true;
            for (auto &n : nodes)
                all = all && n->published;
            if (all)
                return;
            loopOnce(20);
        }
    }

    static int onDelivery(void *ctx, const char *sid, size_t sidLen,
                          const char *data, size_t len)
    {
        auto *c = static_cast<DrainCtx *>(ctx);
        Child *self = static_cast<Child *>(c->owner);
        std::string_view d(data, len);
        size_t at = d.find("LG1 ");
        if (at == std::string_view::npos)
            return 0;
        char tmp[64];
        size_t n = std::min(d.size() - at - 4, sizeof tmp - 1);
        std::memcpy(tmp, d.data() + at + 4, n);
        tmp[n] = '\0';
        unsigned long long seq = std::strtoull(tmp, nullptr, 10);
        char out[128];
        std::snprintf(out, sizeof out, "got %.*s %llu %llu", int(sidLen), sid,
                      seq, (unsigned long long)nowNs());
        self->ch_.send(out);
        return 0;
    }

    // One pass of the event loop; false when the parent is gone.
    bool loopOnce(int ms)
    {
        epoll_event evs[64];
        int n = epoll_wait(ep_, evs, 64, ms);
        for (int i = 0; i < n; ++i) {
            if (!evs[i].data.ptr) {
                if (!ch_.fill())
                    return false;
                std::string line;
                while (ch_.nextLine(line))
                    command(line);
                continue;
            }
            Node *node = static_cast<Node *>(evs[i].data.ptr);
            DrainCtx ctx{node, this};
            dwrtc_node_drain(node->handle, 0, onDelivery, onLogPublished, &ctx);
        }
        return true;
    }

    void command(const std::string &line)
    {
        if (line == "quit") {
            quit_ = true;
        } else if (line.rfind("churn ", 0) == 0) {
            double fraction = 0, seconds = 0;
            std::sscanf(line.c_str() + 6, "%lf %lf", &fraction, &seconds);
            size_t k = size_t(std::lround(fraction * double(nodes_.size())));
            std::vector<size_t> idx(nodes_.size());
            for (size_t i = 0; i < idx.size(); ++i)
                idx[i] = i;
            std::shuffle(idx.begin(), idx.end(), rng_);
            idx.resize(std::min(k, idx.size()));
            doomed_.clear();
            for (size_t i : idx) {
                doomed_.push_back(nodes_[i].get());
                ch_.send("doomed " + nodes_[i]->session);
            }
            ch_.send("doomed-end");
            churnStart_ = nowNs();
            churnPeriod_ = k ? uint64_t(seconds * 1e9 / double(k)) : 0;
            churnNext_ = 0;
        }
    }

    // Replaces the next doomed node when its turn has come, and announces
    // replacements once they have published.
    // Replaces the next doomed node when its turn has come, and announces
    // replacements once they have published. Stopping a node (which waits
    // for its record's withdrawal) and starting one (identity generation)
    // run on helper threads, so this loop keeps draining the other nodes.
    void churnStep()
    {
        uint64_t now = nowNs();
        if (churnNext_ < doomed_.size() &&
            now >= churnStart_ + churnNext_ * churnPeriod_) {
            Node *victim = doomed_[churnNext_++];
            for (auto it = nodes_.begin(); it != nodes_.end(); ++it) {
                if (it->get() == victim) {
                    epoll_ctl(ep_, EPOLL_CTL_DEL, victim->efd, nullptr);
                    stopping_.push_back(std::async(
                        std::launch::async,
                        [n = std::move(*it)]() mutable {
                            n.reset(); // stops: withdraws its record
                        }));
                    nodes_.erase(it);
                    break;
                }
            }
            starting_.push_back(std::async(
                std::launch::async,
                [boot = bootstrapPorts()] { return startNode(boot); }));
        }
        for (auto it = starting_.begin(); it != starting_.end();) {
            if (it->wait_for(std::chrono::seconds(0)) ==
                std::future_status::ready) {
                auto n = it->get();
                if (n) {
                    pending_.push_back(n.get());
                    adopt(std::move(n));
                }
                it = starting_.erase(it);
            } else {
                ++it;
            }
        }
        for (auto it = pending_.begin(); it != pending_.end();) {
            Node *n = *it;
            if (n->published) {
                n->session = openSession(*n);
                ch_.send("session " + n->session);
                it = pending_.erase(it);
            } else {
                ++it;
            }
        }
        for (auto it = stopping_.begin(); it != stopping_.end();) {
            if (it->wait_for(std::chrono::seconds(0)) ==
                std::future_status::ready)
                it = stopping_.erase(it);
            else
                ++it;
        }
        if (!doomed_.empty() && churnNext_ == doomed_.size() &&
            starting_.empty() && pending_.empty() && stopping_.empty() &&
            !churnDone_) {
            churnDone_ = true;
            ch_.send("churned");
        }
    }

    Channel ch_;
    int count_;
    int ep_;
    unsigned seedPort_ = 0;
    std::mt19937 rng_;
    std::vector<std::unique_ptr<Node>> nodes_;
    std::vector<Node *> doomed_;
    std::vector<Node *> pending_;
    std::vector<std::future<std::unique_ptr<Node>>> starting_;
    std::vector<std::future<void>> stopping_;
    size_t churnNext_ = 0;
    uint64_t churnStart_ = 0, churnPeriod_ = 0;
    bool churnDone_ = false;
    bool quit_ = false;
};

// ---------------------------------------------------------------- parent

class Parent {
public:
    Parent(const Options &o, int size) : o_(o), size_(size)
    {
        ep_ = epoll_create1(EPOLL_CLOEXEC);
    }
    ~Parent() { ::close(ep_); }

    int run();

private:
    struct Sent {
        uint64_t at;
        std::string to;
    };

    static int onDelivery(void *ctx, const char *, size_t, const char *data,
                          size_t len)
    {
        auto *c = static_cast<DrainCtx *>(ctx);
        Parent *self = static_cast<Parent *>(c->owner);
        std::string_view d(data, len);
        // Either answer for a message that was not delivered.
        if (d.find("\"not found\"") != std::string_view::npos ||
            d.find("\"unreachable\"") != std::string_view::npos)
            ++self->notFound_;
        return 0;
    }

    // The probe logs at debug level: its router's lines tell why a message
    // failed (record missing, address unreachable, another node there).
    static void onProbeLog(void *ctx, int, const char *msg, size_t len)
    {
        onLogPublished(ctx, 0, msg, len);
        auto *c = static_cast<DrainCtx *>(ctx);
        Parent *self = static_cast<Parent *>(c->owner);
        if (c->node != self->probe_.get())
            return;
        std::string line(msg, len);
        static const std::pair<const char *, const char *> reasons[] = {
            {"is not in the DHT", "missing"},
            {"unreachable; looking it up again", "relookup"},
            {"is unreachable", "unreachable"},
            {"instead; looking it up again", "other_node"},
            {"node link connect failed", "connect_failed"},
            {" failed", "lookup_failed"},
        };
        if (std::getenv("BENCH_VERBOSE") && line.rfind("lookup of ", 0) == 0 &&
            self->churnStart_)
            std::fprintf(stderr, "bench_dht_scale: probe +%.3f s: %s\n",
                         double(nowNs() - self->churnStart_) / 1e9,
                         line.c_str());
        for (auto &[needle, key] : reasons) {
            if (line.find(needle) != std::string::npos) {
                ++self->reasons_[key];
                if (std::getenv("BENCH_VERBOSE"))
                    std::fprintf(stderr, "bench_dht_scale: probe +%.2f s: %s\n",
                                 double(nowNs() - self->churnStart_) / 1e9,
                                 line.c_str());
                break;
            }
        }
    }

    void handleLine(size_t child, const std::string &line);
    void loopOnce(int ms);
    bool submit(const std::string &from, const std::string &to, uint64_t seq,
                Node *via = nullptr);

    const Options &o_;
    int size_;
    int ep_;
    std::vector<pid_t> pids_;
    std::vector<std::unique_ptr<Channel>> chans_;
    std::unique_ptr<Node> seed_, probe_;
    std::vector<std::string> sessions_;   // live, not doomed
    std::set<std::string> doomed_;
    size_t ready_ = 0, doomedEnd_ = 0, churned_ = 0;
    int readyNodes_ = 0;
    std::unordered_map<uint64_t, Sent> sent_;
    std::unordered_map<uint64_t, uint64_t> got_; // seq -> delivered at
    uint64_t notFound_ = 0;
    std::string msg_;
    std::map<std::string, uint64_t> reasons_;       // probe failures by kind
    std::map<std::string, uint64_t> announced_;     // replacement -> when
    uint64_t churnStart_ = 0;
    Node *fresh_ = nullptr;                         // recheck node, verbose
};

bool Parent::submit(const std::string &from, const std::string &to,
                    uint64_t seq, Node *via)
{
    char body[64];
    std::snprintf(body, sizeof body, "LG1 %llu", (unsigned long long)seq);
    msg_ = "{\"type\":\"offer\",\"recipientSessionId\":\"" + to +
           "\",\"messageBody\":\"" + body + "\"}";
    sent_[seq] = Sent{nowNs(), to};
    return dwrtc_submit(via ? via->handle : probe_->handle, from.data(),
                        from.size(), msg_.data(), msg_.size()) == DWRTC_OK;
}

void Parent::handleLine(size_t, const std::string &line)
{
    if (line.rfind("got ", 0) == 0) {
        char sid[64];
        unsigned long long seq = 0, at = 0;
        if (std::sscanf(line.c_str() + 4, "%63s %llu %llu", sid, &seq, &at) == 3)
            got_.emplace(seq, at);
    } else if (line.rfind("session ", 0) == 0) {
        sessions_.push_back(line.substr(8));
        if (churnStart_)
            announced_[sessions_.back()] = nowNs();
    } else if (line.rfind("ready ", 0) == 0) {
        ++ready_;
        readyNodes_ += std::atoi(line.c_str() + 6);
    } else if (line.rfind("doomed ", 0) == 0) {
        std::string s = line.substr(7);
        doomed_.insert(s);
        sessions_.erase(std::remove(sessions_.begin(), sessions_.end(), s),
                        sessions_.end());
    } else if (line == "doomed-end") {
        ++doomedEnd_;
    } else if (line == "churned") {
        ++churned_;
    }
}

void Parent::loopOnce(int ms)
{
    epoll_event evs[64];
    int n = epoll_wait(ep_, evs, 64, ms);
    for (int i = 0; i < n; ++i) {
        uint64_t tag = evs[i].data.u64;
        if (tag == UINT64_MAX - 1 && fresh_) {
            DrainCtx ctx{fresh_, this};
            dwrtc_node_drain(fresh_->handle, 0, onDelivery, onLogPublished,
                             &ctx);
            continue;
        }
        if (tag == UINT64_MAX) {
            Node *nodes[2] = {seed_.get(), probe_.get()};
            for (Node *node : nodes) {
                if (!node)
                    continue;
                DrainCtx ctx{node, this};
                dwrtc_node_drain(node->handle, 0, onDelivery, onProbeLog,
                                 &ctx);
            }
            continue;
        }
        Channel &c = *chans_[tag];
        c.fill();
        std::string line;
        while (c.nextLine(line))
            handleLine(tag, line);
    }
}

int Parent::run()
{
    // OpenDHT's UDP socket thread uses select(): a node started when its
    // process already holds 1,024 descriptors aborts the process. A node
    // takes about 8, so a child holds at most --per-proc nodes.
    int procs = std::max(o_.procs, (size_ + o_.perProc - 1) / o_.perProc);
    procs = std::max(1, std::min(procs, size_));
    // Fork before any thread exists in this process.
    for (int i = 0; i < procs; ++i) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            return 1;
        int count = size_ / procs + (i < size_ % procs ? 1 : 0);
        pid_t pid = fork();
        if (pid == 0) {
            ::close(sv[0]);
            for (auto &c : chans_)
                ::close(c->fd());
            Child child(sv[1], count);
            _exit(child.run());
        }
        ::close(sv[1]);
        pids_.push_back(pid);
        chans_.push_back(std::make_unique<Channel>(sv[0]));
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = chans_.size() - 1;
        epoll_ctl(ep_, EPOLL_CTL_ADD, sv[0], &ev);
    }

    uint64_t t0 = nowNs();
    seed_ = startNode({});
    if (!seed_) {
        std::printf("{\"bench\":\"dht_scale\",\"nodes\":%d,\"error\":\"seed "
                    "did not start\"}\n", size_);
        return 1;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = UINT64_MAX;
    epoll_ctl(ep_, EPOLL_CTL_ADD, seed_->efd, &ev);
    unsigned seedPort = dwrtc_node_dht_port(seed_->handle);
    for (auto &c : chans_)
        c->send("seed " + std::to_string(seedPort));

    uint64_t buildEnd = nowNs() + uint64_t(o_.buildTimeout * 1e9);
    while (ready_ < chans_.size() && nowNs() < buildEnd)
        loopOnce(50);
    double buildS = double(nowNs() - t0) / 1e9;

    // The probe joins last: it never talked to any node.
    probe_ = startNode({seedPort}, DWRTC_LOG_DEBUG);
    if (probe_) {
        ev.data.u64 = UINT64_MAX;
        epoll_ctl(ep_, EPOLL_CTL_ADD, probe_->efd, &ev);
        uint64_t end = nowNs() + 30000000000ull;
        while (!probe_->published && nowNs() < end)
            loopOnce(20);
    }

    struct rusage ru;
    std::mt19937 rng(12345);
    Samples cold, warm;
    int coldFailed = 0;
    uint64_t seq = 1;
    if (probe_ && !sessions_.empty()) {
        std::vector<std::string> targets = sessions_;
        std::shuffle(targets.begin(), targets.end(), rng);
        targets.resize(std::min<size_t>(targets.size(), size_t(o_.probes)));
        for (const std::string &to : targets) {
            std::string from = openSession(*probe_);
            for (int pass = 0; pass < 2; ++pass) {
                uint64_t s = seq++;
                uint64_t nf = notFound_;
                submit(from, to, s);
                uint64_t end = nowNs() + uint64_t(o_.timeout * 1e9);
                while (!got_.count(s) && notFound_ == nf && nowNs() < end)
                    loopOnce(1);
                auto it = got_.find(s);
                if (it == got_.end()) {
                    if (pass == 0)
                        ++coldFailed;
                    break;
                }
                (pass == 0 ? cold : warm).add(it->second - sent_[s].at);
            }
            dwrtc_session_close(probe_->handle, from.data(), from.size());
        }
    }
    getrusage(RUSAGE_SELF, &ru);
    std::printf("{\"bench\":\"dht_scale_first\",\"nodes\":%d,\"procs\":%d,"
                "\"ready_nodes\":%d,\"build_s\":%.1f,\"failed\":%d",
                size_, procs, readyNodes_, buildS, coldFailed);
    cold.print("cold_");
    warm.print("warm_");
    std::printf("}\n");
    std::fflush(stdout);

    // Churn: children replace a share of their nodes while we send.
    if (probe_ && o_.churn > 0 && !sessions_.empty()) {
        char cmd[64];
        std::snprintf(cmd, sizeof cmd, "churn %.3f %.1f", o_.churn,
                      o_.churnSeconds);
        churnStart_ = nowNs();
        reasons_ = {{"lost_to_stable", 0}, {"lost_to_replacement", 0}};
        for (auto &c : chans_)
            c->send(cmd);
        uint64_t end = nowNs() + 10000000000ull;
        while (doomedEnd_ < chans_.size() && nowNs() < end)
            loopOnce(10);
        std::string from = openSession(*probe_);
        got_.clear();
        sent_.clear();
        uint64_t start = nowNs();
        uint64_t stop = start + uint64_t(o_.churnSeconds * 1e9);
        uint64_t period = uint64_t(1e9 / o_.churnRate);
        uint64_t next = start;
        uint64_t nf0 = notFound_;
        std::vector<uint64_t> churnSeqs;
        uint64_t lastIter = nowNs(), maxGap = 0, maxGapAt = 0;
        while (nowNs() < stop) {
            uint64_t now = nowNs();
            if (now - lastIter > maxGap) {
                maxGap = now - lastIter;
                maxGapAt = now - start;
            }
            lastIter = now;
            while (next <= now && !sessions_.empty()) {
                std::uniform_int_distribution<size_t> d(0, sessions_.size() - 1);
                uint64_t s = seq++;
                submit(from, sessions_[d(rng)], s);
                churnSeqs.push_back(s);
                next += period;
            }
            loopOnce(1);
        }
        // Stragglers, and the last replacements.
        uint64_t drain = nowNs() + uint64_t(o_.timeout * 1e9);
        while (nowNs() < drain &&
               (got_.size() < churnSeqs.size() || churned_ < chans_.size()))
            loopOnce(5);
        Samples lat;
        size_t delivered = 0;
        static const bool verbose = std::getenv("BENCH_VERBOSE") != nullptr;
        if (verbose)
            std::fprintf(stderr,
                         "bench_dht_scale: longest pause of the sending "
                         "loop: %.1f ms at +%.2f s\n",
                         double(maxGap) / 1e6, double(maxGapAt) / 1e9);
        std::set<std::string> seen;
        for (uint64_t s : churnSeqs) {
            auto it = got_.find(s);
            bool first = seen.insert(sent_[s].to).second;
            if (it != got_.end()) {
                ++delivered;
                lat.add(it->second - sent_[s].at);
                if (verbose && it->second - sent_[s].at > 100000000)
                    std::fprintf(stderr,
                                 "bench_dht_scale: slow %.0f ms to %s at "
                                 "+%.2f s (first to it: %d)\n",
                                 double(it->second - sent_[s].at) / 1e6,
                                 sent_[s].to.c_str(),
                                 double(sent_[s].at - start) / 1e9, first);
            } else {
                auto a = announced_.find(sent_[s].to);
                bool replacement = a != announced_.end();
                ++reasons_[replacement ? "lost_to_replacement"
                                       : "lost_to_stable"];
                if (verbose)
                    std::fprintf(
                        stderr,
                        "bench_dht_scale: lost message to %s at +%.2f s "
                        "(first to it: %d, %s)\n",
                        sent_[s].to.c_str(), double(sent_[s].at - start) / 1e9,
                        first,
                        replacement
                            ? ("replacement announced " +
                               std::to_string(double(sent_[s].at - a->second) /
                                              1e6) +
                               " ms before")
                                  .c_str()
                            : "stable node");
            }
        }
        std::printf("{\"bench\":\"dht_scale_churn\",\"nodes\":%d,"
                    "\"replaced\":%zu,\"seconds\":%.0f,\"sent\":%zu,"
                    "\"delivered\":%zu,\"not_found\":%llu,"
                    "\"delivery_pct\":%.3f",
                    size_, doomed_.size(), o_.churnSeconds, churnSeqs.size(),
                    delivered, (unsigned long long)(notFound_ - nf0),
                    churnSeqs.empty() ? 0.0
                                      : 100.0 * double(delivered) /
                                            double(churnSeqs.size()));
        if (verbose) {
            // Is a lost target reachable now, from the probe and from the
            // seed (which has a different view of the DHT)?
            std::set<std::string> lost;
            for (uint64_t s : churnSeqs)
                if (!got_.count(s))
                    lost.insert(sent_[s].to);
            std::string fromProbe = openSession(*probe_);
            std::string fromSeed = openSession(*seed_);
            std::unique_ptr<Node> fresh =
                startNode({dwrtc_node_dht_port(seed_->handle)});
            if (fresh) {
                epoll_event fev{};
                fev.events = EPOLLIN;
                fev.data.u64 = UINT64_MAX - 1;
                epoll_ctl(ep_, EPOLL_CTL_ADD, fresh->efd, &fev);
                fresh_ = fresh.get();
                uint64_t end = nowNs() + 30000000000ull;
                while (!fresh->published && nowNs() < end)
                    loopOnce(20);
            }
            std::string fromFresh = fresh ? openSession(*fresh) : "";
            for (const std::string &to : lost) {
                for (Node *via : {probe_.get(), seed_.get(), fresh.get()}) {
                    if (!via)
                        continue;
                    uint64_t s = seq++;
                    uint64_t t = nowNs();
                    submit(via == seed_.get()    ? fromSeed
                           : via == probe_.get() ? fromProbe
                                                 : fromFresh,
                           to, s, via);
                    uint64_t end = nowNs() + uint64_t(o_.timeout * 1e9);
                    while (!got_.count(s) && nowNs() < end)
                        loopOnce(1);
                    std::fprintf(stderr,
                                 "bench_dht_scale: recheck %s from %s: %s "
                                 "(%.1f ms)\n",
                                 to.c_str(),
                                 via == seed_.get()    ? "seed"
                                 : via == probe_.get() ? "probe"
                                                       : "a fresh node",
                                 got_.count(s) ? "delivered" : "lost",
                                 double(nowNs() - t) / 1e6);
                }
            }
            if (fresh)
                epoll_ctl(ep_, EPOLL_CTL_DEL, fresh->efd, nullptr);
            fresh_ = nullptr;
        }
        lat.print("");
        for (auto &[key, count] : reasons_)
            std::printf(",\"%s\":%llu", key.c_str(), (unsigned long long)count);
        std::printf("}\n");
        std::fflush(stdout);
    }

    for (auto &c : chans_)
        c->send("quit");
    uint64_t end = nowNs() + 120000000000ull;
    for (pid_t pid : pids_) {
        int st;
        while (waitpid(pid, &st, WNOHANG) == 0) {
            if (nowNs() >= end) {
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
                break;
            }
            loopOnce(50);
        }
    }
    probe_.reset();
    seed_.reset();
    return 0;
}

std::vector<int> parseList(const char *s)
{
    std::vector<int> out;
    while (*s) {
        out.push_back(std::atoi(s));
        const char *c = std::strchr(s, ',');
        if (!c)
            break;
        s = c + 1;
    }
    return out;
}

} // namespace

int main(int argc, char **argv)
{
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        const char *v = argv[i + 1];
        if (k == "--sizes")
            o.sizes = parseList(v);
        else if (k == "--procs")
            o.procs = std::clamp(std::atoi(v), 1, 64);
        else if (k == "--per-proc")
            o.perProc = std::clamp(std::atoi(v), 1, 120);
        else if (k == "--probes")
            o.probes = std::clamp(std::atoi(v), 0, 100000);
        else if (k == "--churn")
            o.churn = std::clamp(std::atof(v), 0.0, 1.0);
        else if (k == "--churn-seconds")
            o.churnSeconds = std::clamp(std::atof(v), 1.0, 3600.0);
        else if (k == "--churn-rate")
            o.churnRate = std::clamp(std::atof(v), 1.0, 100000.0);
        else if (k == "--timeout")
            o.timeout = std::clamp(std::atof(v), 0.1, 600.0);
        else {
            std::fprintf(stderr,
                         "usage: bench_dht_scale [--sizes 100,300,1000] "
                         "[--procs 4] [--per-proc 100] [--probes 200]\n"
                         "       [--churn 0.2] [--churn-seconds 20] [--churn-rate 50]\n"
                         "       [--timeout 5]\n");
            return 2;
        }
    }
    rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    for (int size : o.sizes) {
        if (size < 2 || size > 5000)
            continue;
        Parent p(o, size);
        p.run();
    }
    return 0;
}
