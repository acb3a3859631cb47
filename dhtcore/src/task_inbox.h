// TaskInbox: tasks handed from any thread to the one thread that runs a
// node's links (LinkService's libwebsockets thread, or the host that drives
// DrivenLinks). Only the task that finds the inbox empty asks for a
// wake-up: the others ride on it, since the woken thread takes every task
// at once, so a burst costs one wake-up. A closed inbox takes nothing.
#pragma once

#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace dwrtc {

class TaskInbox {
public:
    using Task = std::function<void()>;
    enum class Posted {
        Refused,  // closed: the task is dropped
        Queued,   // a wake-up is on its way already
        Wake,     // the first task waiting: the caller wakes the thread
    };

    // Any thread.
    Posted post(Task task) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!open_) {
            return Posted::Refused;
        }
        tasks_.push_back(std::move(task));
        return tasks_.size() == 1 ? Posted::Wake : Posted::Queued;
    }

    void open() {
        std::lock_guard<std::mutex> lock(mutex_);
        open_ = true;
    }

    // Refuses tasks from now on and drops those waiting. They are destroyed
    // outside the lock: what they hold may post on its way out.
    void close() {
        std::vector<Task> dropped;
        std::lock_guard<std::mutex> lock(mutex_);
        open_ = false;
        dropped.swap(tasks_);
        // `dropped` is destroyed after the lock: declared before it.
    }

    // The tasks waiting, in the order they were posted; the inbox is empty
    // after.
    std::vector<Task> takeAll() {
        std::vector<Task> tasks;
        std::lock_guard<std::mutex> lock(mutex_);
        tasks.swap(tasks_);
        return tasks;
    }

private:
    std::mutex mutex_;
    std::vector<Task> tasks_;
    bool open_ = false;
};

}  // namespace dwrtc
