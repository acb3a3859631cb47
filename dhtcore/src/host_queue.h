// HostQueue: records the core hands back to its host (deliveries for local
// sessions, log lines), signalled through an eventfd the host polls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

namespace dwrtc {

struct HostRecord {
    enum class Kind { Delivery, Log };
    Kind kind = Kind::Delivery;
    int level = 0;          // Log only
    std::string sessionId;  // Delivery only
    std::string data;       // frame text or log line
    // A delivery that came over a link: the link and the message's number
    // on it, so that if the host cannot hand it over the sender's node
    // learns which message it was. 0 otherwise.
    std::uint64_t link = 0;
    std::uint64_t number = 0;
    // A key-owned id a newer session on another node took over: the
    // session here that had it is told (data) and speaks as itself again.
    bool unbind = false;
    // A session's chosen PeerJS id (peerjs_id.h) that it now holds
    // (chosenHeld) or no longer holds: the owner thread learns it with the
    // verdict it hands to the session, so that what is for the id reaches
    // the session from then on, with no lookup on the links' thread.
    std::string chosen;
    bool chosenHeld = false;
};

// Any thread may push; one host thread drains. The eventfd is readable while
// records wait, so the host's event loop never polls or blocks on the core.
class HostQueue {
public:
    HostQueue();  // throws std::system_error if no eventfd can be made
    ~HostQueue();
    HostQueue(const HostQueue&) = delete;
    HostQueue& operator=(const HostQueue&) = delete;

    int fd() const { return fd_; }

    void pushDelivery(std::string sessionId, std::string data, std::uint64_t link = 0,
                      std::uint64_t number = 0);
    void pushLog(int level, std::string line);
    void pushUnbind(std::string ownedId, std::string notice);
    void pushChosenVerdict(std::string sessionId, std::string notice, std::string chosen,
                           bool held);

    // Hands out up to max records (0: all) in push order; returns the count.
    // If records remain, the eventfd is left readable.
    std::size_t drain(std::size_t max, const std::function<void(const HostRecord&)>& handle);

private:
    void push(HostRecord record);
    void signal();

    int fd_ = -1;
    std::mutex mutex_;
    std::deque<HostRecord> records_;
    bool signalled_ = false;  // an eventfd write is outstanding; guarded by mutex_
};

}  // namespace dwrtc
