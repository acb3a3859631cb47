#include "dwrtc/host_port.h"

namespace dwrtc {

bool parseHostPort(std::string_view text, HostPort& out) {
    std::string_view host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() ||
            text[close + 1] != ':') {
            return false;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return false;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return false;  // an IPv6 address needs its brackets
        }
    }
    if (host.empty() || host.find_first_of("[]") != std::string_view::npos || port.empty() ||
        port.size() > 5) {
        return false;
    }
    unsigned value = 0;
    for (char c : port) {
        if (c < '0' || c > '9') {
            return false;
        }
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) {
        return false;
    }
    out.host.assign(host);
    out.port = value;
    return true;
}

bool parseBootstrapEntry(std::string_view text, BootstrapTarget& out) {
    // The range's end is after the last '-' that follows the last ':'
    // (host names may hold '-', ports never do).
    std::size_t colon = text.rfind(':');
    std::size_t dash = text.rfind('-');
    HostPort first;
    if (colon == std::string_view::npos || dash == std::string_view::npos || dash < colon) {
        if (!parseHostPort(text, first)) {
            return false;
        }
        out.host = std::move(first.host);
        out.portFrom = out.portTo = first.port;
        return true;
    }
    HostPort last;
    if (!parseHostPort(text.substr(0, dash), first) ||
        !parseHostPort("h:" + std::string(text.substr(dash + 1)), last) ||
        last.port < first.port || last.port - first.port >= kMaxBootstrapPorts) {
        return false;
    }
    out.host = std::move(first.host);
    out.portFrom = first.port;
    out.portTo = last.port;
    return true;
}

bool parseLinkUrl(std::string_view url, HostPort& out) {
    constexpr std::string_view kScheme = "wss://";
    if (url.substr(0, kScheme.size()) != kScheme) {
        return false;
    }
    std::string_view rest = url.substr(kScheme.size());
    rest = rest.substr(0, rest.find('/'));
    return parseHostPort(rest, out);
}

std::string formatHostPort(std::string_view host, unsigned port) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);  // written bracketed already
    }
    std::string out;
    bool v6 = host.find(':') != std::string_view::npos;
    if (v6) {
        out.push_back('[');
    }
    out.append(host);
    if (v6) {
        out.push_back(']');
    }
    out.push_back(':');
    out.append(std::to_string(port));
    return out;
}

}  // namespace dwrtc
