#include "host_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace dwrtc {

HostQueue::HostQueue() {
    fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "eventfd");
    }
}

HostQueue::~HostQueue() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

void HostQueue::pushDelivery(std::string sessionId, std::string data, std::uint64_t link,
                             std::uint64_t number) {
    HostRecord r;
    r.kind = HostRecord::Kind::Delivery;
    r.link = link;
    r.number = number;
    r.sessionId = std::move(sessionId);
    r.data = std::move(data);
    push(std::move(r));
}

void HostQueue::pushUnbind(std::string ownedId, std::string notice) {
    HostRecord r;
    r.kind = HostRecord::Kind::Delivery;
    r.sessionId = std::move(ownedId);
    r.data = std::move(notice);
    r.unbind = true;
    push(std::move(r));
}

void HostQueue::pushChosenVerdict(std::string sessionId, std::string notice, std::string chosen,
                                  bool held) {
    HostRecord r;
    r.kind = HostRecord::Kind::Delivery;
    r.sessionId = std::move(sessionId);
    r.data = std::move(notice);
    r.chosen = std::move(chosen);
    r.chosenHeld = held;
    push(std::move(r));
}

void HostQueue::pushLog(int level, std::string line) {
    HostRecord r;
    r.kind = HostRecord::Kind::Log;
    r.level = level;
    r.data = std::move(line);
    push(std::move(r));
}

void HostQueue::push(HostRecord record) {
    bool wake = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        records_.push_back(std::move(record));
        // One eventfd write per batch: the host drains everything it finds,
        // so further writes before it runs would only cost syscalls.
        if (!signalled_) {
            signalled_ = true;
            wake = true;
        }
    }
    if (wake) {
        signal();
    }
}

void HostQueue::signal() {
    std::uint64_t one = 1;
    // EAGAIN means the counter is saturated, which still reads as readable.
    ssize_t n = ::write(fd_, &one, sizeof one);
    (void)n;
}

std::size_t HostQueue::drain(std::size_t max,
                             const std::function<void(const HostRecord&)>& handle) {
    std::uint64_t count;
    ssize_t n = ::read(fd_, &count, sizeof count);
    (void)n;

    std::deque<HostRecord> batch;
    bool more = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (max == 0 || records_.size() <= max) {
            batch.swap(records_);
        } else {
            for (std::size_t i = 0; i < max; ++i) {
                batch.push_back(std::move(records_.front()));
                records_.pop_front();
            }
        }
        more = !records_.empty();
        signalled_ = more;
    }
    if (more) {
        signal();
    }
    for (const HostRecord& r : batch) {
        handle(r);
    }
    return batch.size();
}

}  // namespace dwrtc
