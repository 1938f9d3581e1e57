<?php
// Test driver for privacyIDEA's PHP client (privacyidea/php-client v1.1.0): runs ONE operation
// through the client's public API and prints ONE JSON object on stdout that describes what the
// client returned (its own PIResponse/PIChallenge objects, not the server's raw JSON).
// The client's log and PHP warnings go to stderr. See ../README.md for the command-line contract.
//
// Written for otpgate's tests; it contains no code of the client. The client's src/ folder is
// found through OTPGATE_PHP_CLIENT_DIR (written by `setup` into the command line it records).

ini_set('display_errors', 'stderr');
error_reporting(E_ALL);

const USAGE = <<<TXT
usage: driver.php [--realm R] [--sa-user U] [--sa-pass P] [--sa-realm R] [--user-agent UA] [--raw] [--verbose] OP BASE_URL ARGS...
  validatecheck    BASE_URL USER PASS [TRANSACTION_ID]
  triggerchallenge BASE_URL USER                 (service account)
  polltransaction  BASE_URL TRANSACTION_ID
  auth             BASE_URL                      (service account: getAuthToken())
  enrolltoken      BASE_URL USER TYPE [GENKEY]   (service account; enrolls only if USER has no token)
env: OTPGATE_PHP_CLIENT_DIR (the client's src/), OTPGATE_CLIENT_REALM, OTPGATE_SA_USER,
     OTPGATE_SA_PASS, OTPGATE_SA_REALM, OTPGATE_CLIENT_USER_AGENT, OTPGATE_CLIENT_RAW=1,
     OTPGATE_CLIENT_VERBOSE=1
TXT;

function usage($why)
{
    fwrite(STDERR, "driver.php: $why\n" . USAGE . "\n");
    exit(2);
}

function envOr($name, $default)
{
    $v = getenv($name);
    return $v === false ? $default : $v;
}

$opts = array(
    'realm' => envOr('OTPGATE_CLIENT_REALM', ''),
    'sa-user' => envOr('OTPGATE_SA_USER', ''),
    'sa-pass' => envOr('OTPGATE_SA_PASS', ''),
    'sa-realm' => envOr('OTPGATE_SA_REALM', ''),
    'user-agent' => envOr('OTPGATE_CLIENT_USER_AGENT', 'otpgate-test-php-client/1.1.0'),
    'raw' => envOr('OTPGATE_CLIENT_RAW', '') === '1',
    'verbose' => envOr('OTPGATE_CLIENT_VERBOSE', '') === '1',
);
$pos = array();
$argv = $_SERVER['argv'];
for ($i = 1; $i < count($argv); $i++)
{
    $a = $argv[$i];
    if ($a === '--raw' || $a === '--verbose')
    {
        $opts[substr($a, 2)] = true;
    }
    elseif ($a === '-h' || $a === '--help')
    {
        echo USAGE . "\n";
        exit(0);
    }
    elseif (substr($a, 0, 2) === '--')
    {
        $k = substr($a, 2);
        if (!array_key_exists($k, $opts) || is_bool($opts[$k])) usage("unknown option $a");
        if (!isset($argv[$i + 1])) usage("option $a needs a value");
        $opts[$k] = $argv[++$i];
    }
    else
    {
        $pos[] = $a;
    }
}
if (count($pos) < 2) usage("missing OP or BASE_URL");
list($op, $base) = $pos;
$args = array_slice($pos, 2);
$arity = array('validatecheck' => array(2, 3), 'triggerchallenge' => array(1, 1),
               'polltransaction' => array(1, 1), 'auth' => array(0, 0), 'enrolltoken' => array(2, 3));
if (!isset($arity[$op])) usage("unknown operation $op");
if (count($args) < $arity[$op][0] || count($args) > $arity[$op][1]) usage("wrong number of arguments");

$srcDir = getenv('OTPGATE_PHP_CLIENT_DIR');
if ($srcDir === false || !is_file("$srcDir/PrivacyIDEA.php"))
{
    fwrite(STDERR, "driver.php: OTPGATE_PHP_CLIENT_DIR must name the client's src/ folder\n");
    exit(2);
}
// The client's classes are one file each, named after the class, in the global namespace
// (what its composer.json's psr-4 "" => "src" maps to).
spl_autoload_register(function ($class) use ($srcDir) {
    $f = "$srcDir/$class.php";
    if (is_file($f)) require_once $f;
});
// PrivacyIDEA.php defines constants next to the class: load it up front.
require_once "$srcDir/PrivacyIDEA.php";

$warnings = array();
set_error_handler(function ($no, $str, $file, $line) use (&$warnings) {
    $warnings[] = basename($file) . ":$line: $str";
    return false; // PHP prints it to stderr as well
});

class DriverLog implements PILog
{
    public $errors = array();
    public $verbose = false;

    public function piDebug($message)
    {
        if ($this->verbose) fwrite(STDERR, "[php-client] $message\n");
    }

    public function piError($message)
    {
        $this->errors[] = $message;
        fwrite(STDERR, "[php-client ERROR] $message\n");
    }
}

function describeResponse($r, $raw)
{
    if ($r === null) return null;
    $mc = array();
    foreach ($r->multiChallenge as $c)
    {
        $mc[] = array(
            'type' => $c->type,
            'serial' => $c->serial,
            'message' => $c->message,
            'transactionID' => $c->transactionID,
            'clientMode' => $c->clientMode,
            'image' => $c->image,
            'attributes' => $c->attributes,
        );
    }
    $o = array(
        'status' => $r->status,
        'value' => $r->value,
        'authenticationStatus' => $r->authenticationStatus,
        'transactionID' => $r->transactionID,
        'message' => $r->message,
        'messages' => $r->messages,
        'otpMessage' => $r->otpMessage(),
        'triggeredTokenTypes' => array_values($r->triggeredTokenTypes()),
        'preferredClientMode' => $r->preferredClientMode,
        'multiChallenge' => $mc,
        'image' => $r->image,
        'errorCode' => $r->errorCode,
        'errorMessage' => $r->errorMessage,
        // detail + user attributes, as the client hands them to SimpleSAMLphp
        'detailAndAttributes' => $r->detailAndAttributes,
    );
    if ($raw) $o['raw'] = json_decode($r->raw, true) ?? $r->raw;
    return $o;
}

$log = new DriverLog();
$log->verbose = $opts['verbose'];
$pi = new PrivacyIDEA($opts['user-agent'], $base);
$pi->logger = $log;
$pi->sslVerifyHost = false;
$pi->sslVerifyPeer = false;
$pi->realm = $opts['realm'];
if (in_array($op, array('triggerchallenge', 'auth', 'enrolltoken')))
{
    $pi->serviceAccountName = $opts['sa-user'];
    $pi->serviceAccountPass = $opts['sa-pass'];
    $pi->serviceAccountRealm = $opts['sa-realm'];
}

$out = array('client' => 'php', 'client_version' => '1.1.0', 'op' => $op);
$rc = 0;
try
{
    switch ($op)
    {
        case 'validatecheck':
            $out['response'] = describeResponse($pi->validateCheck($args[0], $args[1], $args[2] ?? null), $opts['raw']);
            break;
        case 'triggerchallenge':
            $out['service_account_available'] = $pi->serviceAccountAvailable();
            $out['response'] = describeResponse($pi->triggerChallenge($args[0]), $opts['raw']);
            break;
        case 'polltransaction':
            $out['value'] = $pi->pollTransaction($args[0]);
            break;
        case 'auth':
            $out['service_account_available'] = $pi->serviceAccountAvailable();
            $token = $pi->getAuthToken();
            $jwt = array('obtained' => $token !== '');
            if ($token !== '')
            {
                $parts = explode('.', $token);
                $jwt['claims'] = json_decode(base64_decode(strtr($parts[1] ?? '', '-_', '+/')), true);
            }
            $out['jwt'] = $jwt;
            break;
        case 'enrolltoken':
            // null when the user already has a token (the client checks GET /token first),
            // otherwise the decoded /token/init answer.
            $out['result'] = $pi->enrollToken($args[0], $args[2] ?? '1', $args[1]);
            break;
    }
}
catch (Throwable $e)
{
    $out['exception'] = get_class($e) . ': ' . $e->getMessage();
    $rc = 1;
}
$out['client_errors'] = $log->errors;
$out['php_warnings'] = $warnings;
echo json_encode($out, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION) . "\n";
exit($rc);
