package dev.ambient.waypoint;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.atomic.AtomicInteger;

/** A TCP application that sends back what it receives, and ends its side when the client ends its. */
final class EchoServer implements AutoCloseable {

    private final ServerSocket server = new ServerSocket();
    /** Connections that reached the application. */
    final AtomicInteger connections = new AtomicInteger();

    EchoServer(InetSocketAddress address) throws IOException {
        server.bind(address);
        Thread.ofVirtual().start(this::acceptLoop);
    }

    private void acceptLoop() {
        while (!server.isClosed()) {
            try {
                Socket s = server.accept();
                connections.incrementAndGet();
                Thread.ofVirtual().start(() -> {
                    try (s) {
                        s.getInputStream().transferTo(s.getOutputStream());
                        s.shutdownOutput();
                    } catch (IOException ignored) {
                        // client went away
                    }
                });
            } catch (IOException e) {
                return;
            }
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
    }
}
