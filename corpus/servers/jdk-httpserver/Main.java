// The JDK's built-in com.sun.net.httpserver.HttpServer, started as a user's
// service does, for the rollout-harness corpus. PORT/HOST say where to
// listen, POD_NAME goes into X-Pod-Name. STOP_DELAY seconds (default 10) is
// the argument of HttpServer.stop(delay) called from a shutdown hook, which
// the JVM runs on SIGTERM, SIGINT and SIGHUP (Runtime.addShutdownHook).
import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.util.concurrent.Executors;

public class Main {
    static String env(String k, String d) {
        String v = System.getenv(k);
        return v == null || v.isEmpty() ? d : v;
    }

    public static void main(String[] args) throws Exception {
        String pod = env("POD_NAME", "");
        long workMs = Long.parseLong(env("WORK_MS", "20"));
        int delay = Integer.parseInt(env("STOP_DELAY", "10"));
        HttpServer server = HttpServer.create(
            new InetSocketAddress(env("HOST", "127.0.0.1"), Integer.parseInt(env("PORT", "8080"))), 128);
        server.createContext("/", ex -> {
            try {
                if (ex.getRequestURI().getPath().equals("/work") && workMs > 0) Thread.sleep(workMs);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            byte[] body = "ok\n".getBytes();
            ex.getResponseHeaders().set("X-Pod-Name", pod);
            ex.getResponseHeaders().set("Content-Type", "text/plain");
            ex.sendResponseHeaders(200, body.length);
            ex.getResponseBody().write(body);
            ex.close();
        });
        server.setExecutor(Executors.newFixedThreadPool(32));
        server.start();
        System.out.println("listening");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("shutdown hook: HttpServer.stop(" + delay + ")");
            server.stop(delay);
            System.out.println("stopped");
        }));
    }
}
