// A DWRTC network of real nodes in this process, on loopback, with the
// bookkeeping the multi-node tests need: every delivery each session got.
#pragma once

#include <jansson.h>
#include <poll.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dwrtc/node.h"

namespace dwrtc::test {

class Network {
public:
    using Clock = std::chrono::steady_clock;

    ~Network() {
        for (auto& n : nodes_) {
            if (n) n->stop();
        }
    }

    static NodeConfig loopbackConfig() {
        NodeConfig c;
        c.dhtPortFrom = c.dhtPortTo = 0;
        c.linkPortFrom = c.linkPortTo = 0;
        c.bindAddress = "127.0.0.1";
        c.publicAddress = "127.0.0.1";
        // Every node shares one IP here; OpenDHT's per-IP limit would
        // throttle the whole network as if it were one abusive peer.
        c.dhtPerIpRequestLimit = -1;
        c.dhtTotalRequestLimit = -1;
        c.logLevel = std::getenv("DWRTC_TEST_LOG") ? 3 : 2;
        return c;
    }

    // Starts a node that bootstraps through the first node of the network
    // (unless throughFirst is false: then only through config.bootstrap).
    Node& addNode(NodeConfig config = loopbackConfig(), bool throughFirst = true) {
        if (throughFirst && !nodes_.empty() && nodes_.front()) {
            config.bootstrap.push_back("127.0.0.1:" + std::to_string(nodes_.front()->dhtPort()));
        }
        auto node = std::make_unique<Node>(config);
        if (!node->start()) {
            pump(std::chrono::milliseconds(0));
            throw std::runtime_error("node did not start: " + lastLog_);
        }
        nodes_.push_back(std::move(node));
        return *nodes_.back();
    }

    Node& node(std::size_t i) { return *nodes_.at(i); }
    std::size_t size() const { return nodes_.size(); }

    void stopNode(std::size_t i) {
        nodes_.at(i)->stop();
    }

    // Drains every node for up to `wait`, recording deliveries.
    void pump(std::chrono::milliseconds wait) {
        std::vector<pollfd> fds;
        for (auto& n : nodes_) {
            fds.push_back({n->eventFd(), POLLIN, 0});
        }
        if (!fds.empty()) {
            ::poll(fds.data(), fds.size(), static_cast<int>(wait.count()));
        }
        for (auto& n : nodes_) {
            n->drain(
                0,
                [&](std::string_view session, std::string_view data) {
                    inbox_[std::string(session)].emplace_back(data);
                },
                [&](int level, std::string_view line) {
                    lastLog_ = std::string(line);
                    log_ += lastLog_ + "\n";
                    if (std::getenv("DWRTC_TEST_LOG")) {
                        std::fprintf(stderr, "[node %s] %d %.*s\n", n->id().c_str(), level,
                                     static_cast<int>(line.size()), line.data());
                    }
                });
        }
    }

    // Pumps until pred() holds or the time is up; returns pred().
    bool waitFor(const std::function<bool()>& pred,
                 std::chrono::milliseconds limit = std::chrono::seconds(20)) {
        auto end = Clock::now() + limit;
        while (!pred()) {
            if (Clock::now() >= end) return pred();
            pump(std::chrono::milliseconds(20));
        }
        return true;
    }

    bool waitPublished(std::chrono::milliseconds limit = std::chrono::seconds(30)) {
        return waitFor(
            [&] {
                for (auto& n : nodes_) {
                    if (n->running() && !n->published()) return false;
                }
                return true;
            },
            limit);
    }

    std::vector<std::string>& inbox(const std::string& session) { return inbox_[session]; }
    // Every log line of every node so far.
    const std::string& log() const { return log_; }

private:
    std::vector<std::unique_ptr<Node>> nodes_;
    std::map<std::string, std::vector<std::string>> inbox_;
    std::string lastLog_;
    std::string log_;
};

// Field `name` of a JSON delivery, "" if absent or not a string.
inline std::string field(const std::string& json, const char* name) {
    json_error_t err;
    json_t* obj = json_loads(json.c_str(), 0, &err);
    std::string out;
    if (obj) {
        json_t* v = json_object_get(obj, name);
        if (json_is_string(v)) out = json_string_value(v);
        json_decref(obj);
    }
    return out;
}

inline std::string clientMessage(const std::string& recipient, const std::string& body,
                                 const std::string& type = "SignalingMessage") {
    return "{\"type\":\"" + type + "\",\"recipientSessionId\":\"" + recipient +
           "\",\"messageBody\":\"" + body + "\"}";
}

}  // namespace dwrtc::test
