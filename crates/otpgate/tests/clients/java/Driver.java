// Test driver for privacyIDEA's Java client (privacyidea/java-client v1.5.1): runs ONE
// operation through the client's public API and prints ONE JSON object on stdout that
// describes what the client returned (its own parsed objects, not the server's raw JSON).
// The client's log goes to stderr. See ../README.md for the command-line contract.
//
// Written for otpgate's tests; it contains no code of the client. `setup` compiles it
// together with the client's src/main/java against Debian's okhttp 3, okio 1, gson jars.

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.privacyidea.Challenge;
import org.privacyidea.ChallengeStatus;
import org.privacyidea.IPILogger;
import org.privacyidea.PIResponse;
import org.privacyidea.PrivacyIDEA;
import org.privacyidea.RolloutInfo;
import org.privacyidea.TokenInfo;

public class Driver
{
    static final String USAGE = String.join("\n",
            "usage: Driver [--realm R] [--sa-user U] [--sa-pass P] [--sa-realm R] [--user-agent UA] [--raw] [--verbose] OP BASE_URL ARGS...",
            "  validatecheck       BASE_URL USER PASS [TRANSACTION_ID]",
            "  validatecheckserial BASE_URL SERIAL PASS [TRANSACTION_ID]",
            "  triggerchallenge    BASE_URL USER                (service account)",
            "  polltransaction     BASE_URL TRANSACTION_ID",
            "  gettokeninfo        BASE_URL USER                (service account)",
            "  auth                BASE_URL                     (service account: the JWT the client got)",
            "  tokenrollout        BASE_URL USER TYPE           (service account)",
            "env: OTPGATE_CLIENT_REALM, OTPGATE_SA_USER, OTPGATE_SA_PASS, OTPGATE_SA_REALM,",
            "     OTPGATE_CLIENT_USER_AGENT, OTPGATE_CLIENT_RAW=1, OTPGATE_CLIENT_VERBOSE=1");

    static String realm = env("OTPGATE_CLIENT_REALM", "");
    static String saUser = env("OTPGATE_SA_USER", "");
    static String saPass = env("OTPGATE_SA_PASS", "");
    static String saRealm = env("OTPGATE_SA_REALM", "");
    static String userAgent = env("OTPGATE_CLIENT_USER_AGENT", "otpgate-test-java-client/1.5.1");
    static boolean raw = "1".equals(System.getenv("OTPGATE_CLIENT_RAW"));
    static boolean verbose = "1".equals(System.getenv("OTPGATE_CLIENT_VERBOSE"));
    // Everything the client passed to its logger's error(): shows failures the client swallows
    // (e.g. a JWT it could not read), which its return values do not.
    static final JsonArray clientErrors = new JsonArray();

    static String env(String name, String dflt)
    {
        String v = System.getenv(name);
        return v == null ? dflt : v;
    }

    public static void main(String[] argv)
    {
        List<String> pos = new ArrayList<>();
        for (int i = 0; i < argv.length; i++)
        {
            String a = argv[i];
            switch (a)
            {
                case "--realm": realm = need(argv, ++i); break;
                case "--sa-user": saUser = need(argv, ++i); break;
                case "--sa-pass": saPass = need(argv, ++i); break;
                case "--sa-realm": saRealm = need(argv, ++i); break;
                case "--user-agent": userAgent = need(argv, ++i); break;
                case "--raw": raw = true; break;
                case "--verbose": verbose = true; break;
                case "-h": case "--help": System.out.println(USAGE); System.exit(0); break;
                default:
                    if (a.startsWith("--")) usage("unknown option " + a);
                    pos.add(a);
            }
        }
        if (pos.size() < 2) usage("missing OP or BASE_URL");
        String op = pos.get(0);
        String base = pos.get(1);
        List<String> args = pos.subList(2, pos.size());

        JsonObject out = new JsonObject();
        out.addProperty("client", "java");
        out.addProperty("client_version", "1.5.1");
        out.addProperty("op", op);
        int rc = 0;
        PrivacyIDEA pi = null;
        try
        {
            boolean needsSa;
            switch (op)
            {
                case "validatecheck": case "validatecheckserial": arity(args, 2, 3); needsSa = false; break;
                case "polltransaction": arity(args, 1, 1); needsSa = false; break;
                case "triggerchallenge": case "gettokeninfo": arity(args, 1, 1); needsSa = true; break;
                case "auth": arity(args, 0, 0); needsSa = true; break;
                case "tokenrollout": arity(args, 2, 2); needsSa = true; break;
                default: usage("unknown operation " + op); return;
            }
            PrivacyIDEA.Builder b = PrivacyIDEA.newBuilder(base, userAgent)
                                               .verifySSL(false)
                                               .logger(new Logger())
                                               .realm(realm);
            // The client fetches its JWT in build() when a service account is set, so only the
            // operations that need one get it (as an integration without one would behave).
            if (needsSa)
            {
                b.serviceAccount(saUser, saPass).serviceRealm(saRealm);
            }
            pi = b.build();
            switch (op)
            {
                case "validatecheck":
                    out.add("response", describe(pi.validateCheck(args.get(0), args.get(1), opt(args, 2))));
                    break;
                case "validatecheckserial":
                    out.add("response", describe(pi.validateCheckSerial(args.get(0), args.get(1), opt(args, 2))));
                    break;
                case "triggerchallenge":
                    out.addProperty("service_account_available", pi.serviceAccountAvailable());
                    out.add("response", describe(pi.triggerChallenges(args.get(0))));
                    break;
                case "polltransaction":
                    ChallengeStatus cs = pi.pollTransaction(args.get(0));
                    out.addProperty("challenge_status", cs == null ? null : cs.toString());
                    break;
                case "gettokeninfo":
                    out.add("tokens", describeTokens(pi.getTokenInfo(args.get(0))));
                    break;
                case "auth":
                    out.addProperty("service_account_available", pi.serviceAccountAvailable());
                    out.add("jwt", describeJwt(pi.serviceAccountAvailable() ? pi.getJWT() : null));
                    break;
                case "tokenrollout":
                    out.add("rollout", describeRollout(pi.tokenRollout(args.get(0), args.get(1))));
                    break;
            }
        }
        catch (Exception e)
        {
            out.addProperty("exception", e.toString());
            rc = 1;
        }
        out.add("client_errors", clientErrors);
        Gson gson = new GsonBuilder().serializeNulls().disableHtmlEscaping().create();
        System.out.println(gson.toJson(out));
        System.out.flush();
        try
        {
            if (pi != null) pi.close();
        }
        catch (Exception ignored)
        {
        }
        // okhttp's and the client's pools keep threads alive for a while.
        System.exit(rc);
    }

    static String need(String[] argv, int i)
    {
        if (i >= argv.length) usage("option " + argv[i - 1] + " needs a value");
        return argv[i];
    }

    static void arity(List<String> args, int min, int max)
    {
        if (args.size() < min || args.size() > max) usage("wrong number of arguments");
    }

    static String opt(List<String> args, int i)
    {
        return args.size() > i ? args.get(i) : null;
    }

    static void usage(String why)
    {
        System.err.println("Driver: " + why + "\n" + USAGE);
        System.exit(2);
    }

    static JsonElement describe(PIResponse r)
    {
        if (r == null) return JsonNull.INSTANCE;
        JsonObject o = new JsonObject();
        o.addProperty("status", r.status);
        o.addProperty("value", r.value);
        o.addProperty("authentication", r.authentication == null ? null : r.authentication.toString());
        o.addProperty("authenticationSuccessful", r.authenticationSuccessful());
        o.addProperty("hasChallenges", r.hasChallenges());
        o.addProperty("transactionID", r.transactionID);
        o.addProperty("message", r.message);
        o.add("messages", strings(r.messages));
        o.addProperty("otpMessage", r.otpMessage());
        o.addProperty("otpTransactionId", r.otpTransactionId());
        o.add("triggeredTokenTypes", strings(r.triggeredTokenTypes()));
        o.addProperty("preferredClientMode", r.preferredClientMode);
        o.addProperty("pushAvailable", r.pushAvailable());
        JsonArray mc = new JsonArray();
        for (Challenge c : r.multiChallenge)
        {
            JsonObject co = new JsonObject();
            co.addProperty("type", c.getType());
            co.addProperty("serial", c.getSerial());
            co.addProperty("message", c.getMessage());
            co.addProperty("transactionID", c.getTransactionID());
            co.addProperty("clientMode", c.getClientMode());
            co.addProperty("image", c.getImage());
            mc.add(co);
        }
        o.add("multiChallenge", mc);
        o.addProperty("serial", r.serial);
        o.addProperty("type", r.type);
        o.addProperty("otpLength", r.otpLength);
        o.addProperty("username", r.username);
        o.addProperty("image", r.image);
        o.addProperty("challengeStatus", r.challengeStatus == null ? null : r.challengeStatus.toString());
        o.addProperty("id", r.id);
        o.addProperty("jsonRPCVersion", r.jsonRPCVersion);
        o.addProperty("piVersion", r.piVersion);
        o.addProperty("signaturePresent", r.signature != null && !r.signature.isEmpty());
        o.addProperty("isEnrollViaMultichallenge", r.isEnrollViaMultichallenge);
        o.addProperty("enrollmentLink", r.enrollmentLink);
        o.addProperty("passkeyChallenge", r.passkeyChallenge);
        o.addProperty("webAuthnSignRequest", r.webAuthnSignRequest);
        if (r.error == null)
        {
            o.add("error", JsonNull.INSTANCE);
        }
        else
        {
            JsonObject e = new JsonObject();
            e.addProperty("code", r.error.code);
            e.addProperty("message", r.error.message);
            o.add("error", e);
        }
        if (raw) o.add("raw", parseOrString(r.rawMessage));
        return o;
    }

    static JsonElement describeTokens(List<TokenInfo> tokens)
    {
        if (tokens == null) return JsonNull.INSTANCE;
        JsonArray a = new JsonArray();
        for (TokenInfo t : tokens)
        {
            JsonObject o = new JsonObject();
            o.addProperty("serial", t.serial);
            o.addProperty("tokenType", t.tokenType);
            o.addProperty("active", t.active);
            o.addProperty("locked", t.locked);
            o.addProperty("revoked", t.revoked);
            o.addProperty("count", t.count);
            o.addProperty("countWindow", t.countWindow);
            o.addProperty("failCount", t.failCount);
            o.addProperty("maxFail", t.maxFail);
            o.addProperty("otpLen", t.otpLen);
            o.addProperty("syncWindow", t.syncWindow);
            o.addProperty("id", t.id);
            o.addProperty("description", t.description);
            o.addProperty("resolver", t.resolver);
            o.addProperty("rolloutState", t.rolloutState);
            o.addProperty("userEditable", t.userEditable);
            o.addProperty("userID", t.userID);
            o.addProperty("userRealm", t.userRealm);
            o.addProperty("username", t.username);
            o.add("realms", strings(t.realms));
            JsonObject info = new JsonObject();
            for (Map.Entry<String, String> e : new java.util.TreeMap<>(t.info).entrySet())
            {
                info.addProperty(e.getKey(), e.getValue());
            }
            o.add("info", info);
            if (raw) o.add("raw", parseOrString(t.rawJson));
            a.add(o);
        }
        return a;
    }

    static JsonElement describeRollout(RolloutInfo r)
    {
        if (r == null) return JsonNull.INSTANCE;
        JsonObject o = new JsonObject();
        o.addProperty("serial", r.serial);
        o.addProperty("rolloutState", r.rolloutState);
        o.addProperty("googleurlValuePresent", r.googleurl != null && !r.googleurl.value.isEmpty());
        o.addProperty("otpkeyValuePresent", r.otpkey != null && !r.otpkey.value.isEmpty());
        if (r.error == null)
        {
            o.add("error", JsonNull.INSTANCE);
        }
        else
        {
            JsonObject e = new JsonObject();
            e.addProperty("code", r.error.code);
            e.addProperty("message", r.error.message);
            o.add("error", e);
        }
        if (raw) o.add("raw", parseOrString(r.raw));
        return o;
    }

    // The client keeps the JWT as a string; its claims say whom the server signed in.
    static JsonElement describeJwt(String jwt)
    {
        JsonObject o = new JsonObject();
        o.addProperty("obtained", jwt != null && !jwt.isEmpty());
        if (jwt != null && !jwt.isEmpty())
        {
            String[] parts = jwt.split("\\.");
            try
            {
                String payload = new String(Base64.getUrlDecoder().decode(parts[1]), StandardCharsets.UTF_8);
                o.add("claims", JsonParser.parseString(payload));
            }
            catch (Exception e)
            {
                o.addProperty("claims_error", e.toString());
            }
        }
        return o;
    }

    static JsonArray strings(List<String> l)
    {
        JsonArray a = new JsonArray();
        if (l != null) l.forEach(a::add);
        return a;
    }

    static JsonElement parseOrString(String s)
    {
        if (s == null) return JsonNull.INSTANCE;
        try
        {
            return JsonParser.parseString(s);
        }
        catch (Exception e)
        {
            return new com.google.gson.JsonPrimitive(s);
        }
    }

    static class Logger implements IPILogger
    {
        public void log(String message)
        {
            if (verbose) System.err.println("[java-client] " + message);
        }

        public void error(String message)
        {
            // Logged by build() whenever no service account is set: not a failure.
            if (message.startsWith("No service account configured"))
            {
                log(message);
                return;
            }
            synchronized (clientErrors)
            {
                clientErrors.add(message);
            }
            System.err.println("[java-client ERROR] " + message);
        }

        public void log(Throwable t)
        {
            if (verbose) System.err.println("[java-client] " + t);
        }

        public void error(Throwable t)
        {
            synchronized (clientErrors)
            {
                clientErrors.add(String.valueOf(t));
            }
            System.err.println("[java-client ERROR] " + t);
        }
    }
}
