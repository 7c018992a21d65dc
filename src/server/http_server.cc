#include <utility>  // before asio: Boost 1.74 with GCC 12

#include "server/http_server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>
#include <vector>

namespace boxd::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using net::awaitable;
using net::use_awaitable;
using tcp = net::ip::tcp;
using unix_proto = net::local::stream_protocol;

namespace {

std::string percentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

void parseTarget(const std::string& target, HttpRequest* req) {
  size_t q = target.find('?');
  req->path = percentDecode(target.substr(0, q));
  if (q == std::string::npos) return;
  std::string qs = target.substr(q + 1);
  size_t pos = 0;
  while (pos <= qs.size()) {
    size_t amp = qs.find('&', pos);
    std::string kv = qs.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    if (!kv.empty()) {
      size_t eq = kv.find('=');
      std::string k = percentDecode(kv.substr(0, eq));
      std::string v = eq == std::string::npos ? "" : percentDecode(kv.substr(eq + 1));
      if (req->query.count(k)) req->query[k] += "," + v;  // label=a=1&label=b=2 -> "a=1,b=2"
      else req->query[k] = v;
    }
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
}

std::string errorBody(const std::string& code, const std::string& message) {
  std::string esc;
  for (char c : message) {
    if (c == '"' || c == '\\') esc += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) esc += c;
  }
  return "{\"error\":{\"code\":\"" + code + "\",\"message\":\"" + esc + "\"}}";
}

}  // namespace

struct HttpServer::Impl {
  Impl(HttpHandler h, HttpServerOptions o)
      : handler(std::move(h)), options(o), io(o.io_threads), pool(static_cast<size_t>(o.worker_threads)) {}

  static awaitable<HttpResponse> runHandler(Impl* self, std::shared_ptr<HttpRequest> req) {
    // A handler bug must cost one request a 500, never the connection or the process.
    try {
      co_return self->handler(*req);
    } catch (const std::exception& e) {
      HttpResponse r;
      r.status = 500;
      r.body = errorBody("internal", std::string("internal error: ") + e.what());
      co_return r;
    }
  }

  // Nothing else touches the socket while a stream runs, so a worker may write to it.
  template <typename Socket>
  static awaitable<void> runStream(Socket* sock, std::function<void(const ChunkWriter&)> stream) {
    ChunkWriter writer = [sock](const std::string& data) {
      if (data.empty()) return true;
      beast::error_code wec;
      net::write(*sock, http::make_chunk(net::buffer(data)), wec);
      return !wec;
    };
    try {
      stream(writer);
    } catch (const std::exception& e) {
      (void)writer(errorBody("internal", std::string("internal error: ") + e.what()) + "\n");
    }
    beast::error_code wec;
    net::write(*sock, http::make_chunk_last(), wec);
    co_return;
  }

  template <typename Socket>
  awaitable<void> session(Socket socket, bool via_unix) {
    beast::flat_buffer buffer;
    beast::error_code ec;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(options.max_body_bytes);
      parser.header_limit(static_cast<uint32_t>(options.max_header_bytes));
      net::steady_timer idle(socket.get_executor());
      idle.expires_after(std::chrono::seconds(options.idle_timeout_seconds));
      idle.async_wait([&socket](beast::error_code e) {
        if (!e) {
          beast::error_code ignore;
          socket.close(ignore);
        }
      });
      co_await http::async_read(socket, buffer, parser, net::redirect_error(use_awaitable, ec));
      idle.cancel();
      if (ec == http::error::body_limit) {
        http::response<http::string_body> res{http::status::payload_too_large, 11};
        res.set(http::field::content_type, "application/json");
        res.set(http::field::connection, "close");
        res.body() = errorBody("payload_too_large",
                               "request body exceeds " + std::to_string(options.max_body_bytes) + " bytes");
        res.prepare_payload();
        co_await http::async_write(socket, res, net::redirect_error(use_awaitable, ec));
        // Let a client that sends the whole body before reading finish (bounded), so it reads
        // the 413 instead of a connection reset.
        socket.shutdown(net::socket_base::shutdown_send, ec);
        net::steady_timer drain(socket.get_executor());
        drain.expires_after(std::chrono::seconds(5));
        drain.async_wait([&socket](beast::error_code e) {
          if (!e) {
            beast::error_code ignore;
            socket.close(ignore);
          }
        });
        std::vector<char> sink(65536);
        for (size_t drained = 0; drained < 4 * options.max_body_bytes;) {
          size_t n = co_await socket.async_read_some(net::buffer(sink), net::redirect_error(use_awaitable, ec));
          if (ec) break;
          drained += n;
        }
        drain.cancel();
        co_return;
      }
      if (ec == http::error::header_limit || ec == http::error::bad_target || ec == http::error::bad_method ||
          ec == http::error::bad_version || ec == http::error::bad_field || ec == http::error::bad_value) {
        http::response<http::string_body> res{http::status::bad_request, 11};
        res.set(http::field::content_type, "application/json");
        res.set(http::field::connection, "close");
        res.body() = errorBody("bad_request", ec.message());
        res.prepare_payload();
        co_await http::async_write(socket, res, net::redirect_error(use_awaitable, ec));
        co_return;
      }
      if (ec) co_return;  // closed, timed out, or garbage
      auto& msg = parser.get();
      auto req = std::make_shared<HttpRequest>();
      req->method = std::string(msg.method_string());
      req->target = std::string(msg.target());
      parseTarget(req->target, req.get());
      for (const auto& f : msg) {
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
        req->headers[name] = std::string(f.value());
      }
      req->body = std::move(msg.body());
      req->via_unix_socket = via_unix;
      const bool keep_alive = msg.keep_alive();
      const unsigned version = msg.version();

      // The handler may block (SQLite, the engine): run it on the worker pool.
      // The handler may block (SQLite, the engine): run it on the worker pool. Named coroutines
      // with by-value parameters, not capturing lambdas: a lambda's captures die with the
      // closure, while parameters live in the coroutine frame.
      auto resp = co_await net::co_spawn(pool, runHandler(this, req), use_awaitable);

      if (resp.stream) {
        http::response<http::empty_body> head{static_cast<http::status>(resp.status), version};
        head.set(http::field::content_type, resp.content_type);
        for (const auto& [k, v] : resp.headers) head.set(k, v);
        head.chunked(true);
        http::response_serializer<http::empty_body> sr{head};
        co_await http::async_write_header(socket, sr, net::redirect_error(use_awaitable, ec));
        if (ec) co_return;
        // Nothing else touches the socket while the stream runs, so the worker may write it.
        co_await net::co_spawn(pool, runStream<Socket>(&socket, resp.stream), use_awaitable);
        if (!keep_alive) co_return;
        continue;
      }

      http::response<http::string_body> res{static_cast<http::status>(resp.status), version};
      res.set(http::field::content_type, resp.content_type);
      res.set(http::field::server, "boxd");
      for (const auto& [k, v] : resp.headers) res.set(k, v);
      res.keep_alive(keep_alive);
      res.body() = std::move(resp.body);
      res.prepare_payload();
      co_await http::async_write(socket, res, net::redirect_error(use_awaitable, ec));
      if (ec || !keep_alive) co_return;
    }
  }

  template <typename Acceptor>
  awaitable<void> acceptLoop(Acceptor& acceptor, bool via_unix) {
    for (;;) {
      beast::error_code ec;
      auto socket = co_await acceptor.async_accept(net::redirect_error(use_awaitable, ec));
      if (ec) {
        if (!acceptor.is_open()) co_return;
        continue;
      }
      // Asio does not set close-on-exec; boxd starts processes (box-init), which must not
      // inherit client connections.
      ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
      net::co_spawn(acceptor.get_executor(), session(std::move(socket), via_unix), net::detached);
    }
  }

  HttpHandler handler;
  HttpServerOptions options;
  net::io_context io;
  net::thread_pool pool;
  std::vector<std::unique_ptr<tcp::acceptor>> tcp_acceptors;
  std::vector<std::unique_ptr<unix_proto::acceptor>> unix_acceptors;
  std::vector<std::thread> threads;
  std::unique_ptr<net::executor_work_guard<net::io_context::executor_type>> work;
};

HttpServer::HttpServer(HttpHandler handler, HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(handler), options)) {}

HttpServer::~HttpServer() { stop(); }

StatusOr<std::string> HttpServer::listenTcp(const std::string& host, uint16_t port) {
  beast::error_code ec;
  auto addr = net::ip::make_address(host, ec);
  if (ec) return invalidArgument("listen address '" + host + "': " + ec.message());
  auto acc = std::make_unique<tcp::acceptor>(impl_->io);
  tcp::endpoint ep(addr, port);
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(net::socket_base::max_listen_connections, ec);
  if (ec) return unavailable("listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  ::fcntl(acc->native_handle(), F_SETFD, FD_CLOEXEC);
  auto bound = acc->local_endpoint();
  std::string where = (bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string()) +
                      ":" + std::to_string(bound.port());
  net::co_spawn(impl_->io, impl_->acceptLoop(*acc, false), net::detached);
  impl_->tcp_acceptors.push_back(std::move(acc));
  return where;
}

Status HttpServer::listenUnix(const std::string& path, int mode) {
  ::unlink(path.c_str());
  beast::error_code ec;
  auto acc = std::make_unique<unix_proto::acceptor>(impl_->io);
  unix_proto::endpoint ep(path);
  acc->open(ep.protocol(), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(net::socket_base::max_listen_connections, ec);
  if (ec) return unavailable("listen on unix socket " + path + ": " + ec.message());
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
  ::fcntl(acc->native_handle(), F_SETFD, FD_CLOEXEC);
  net::co_spawn(impl_->io, impl_->acceptLoop(*acc, true), net::detached);
  impl_->unix_acceptors.push_back(std::move(acc));
  return okStatus();
}

void HttpServer::start() {
  impl_->work = std::make_unique<net::executor_work_guard<net::io_context::executor_type>>(impl_->io.get_executor());
  for (int i = 0; i < impl_->options.io_threads; ++i) {
    impl_->threads.emplace_back([this] { impl_->io.run(); });
  }
}

void HttpServer::stop() {
  if (!impl_) return;
  net::post(impl_->io, [this] {
    beast::error_code ec;
    for (auto& a : impl_->tcp_acceptors) a->close(ec);
    for (auto& a : impl_->unix_acceptors) a->close(ec);
  });
  impl_->work.reset();
  impl_->io.stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  impl_->threads.clear();
  impl_->pool.stop();
  impl_->pool.join();
}

}  // namespace boxd::server
