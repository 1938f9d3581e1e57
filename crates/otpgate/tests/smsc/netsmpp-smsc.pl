#!/usr/bin/perl
# An SMSC for otpgate's tests built on Net::SMPP (Debian's libnet-smpp-perl), so that the
# SMPP client is checked against a codec that is not its own.
#
#   netsmpp-smsc.pl SYSTEM_ID PASSWORD STAT RECORD_FILE
#
# Listens on 127.0.0.1 (a free port, printed on the first line of stdout), serves one
# connection after another: a bind (transceiver or transmitter) with the right credentials is
# accepted, every submit_sm is answered with a new message id and recorded as one line of
# RECORD_FILE ("bind <command>" or "submit <id> <registered_delivery> <destination> <hex of
# short_message>"), and a submit that asks for a receipt is followed by a deliver_sm receipt
# in state STAT (none when STAT is "none"). Ends when stdin closes.
use strict;
use warnings;
use IO::Handle;
use IO::Select;
use Net::SMPP;

my ($sysid, $pw, $stat, $file) = @ARGV;
die "usage: $0 SYSTEM_ID PASSWORD STAT RECORD_FILE\n" unless defined $file;
my $listen = Net::SMPP->new_listen('127.0.0.1', port => 0, smpp_version => 0x34)
    or die "listen: $!";
STDOUT->autoflush(1);
print $listen->sockport, "\n";
open(my $rec, '>>', $file) or die "$file: $!";
$rec->autoflush(1);

my $next_id = 70000;
my $sel = IO::Select->new($listen, \*STDIN);
my %conns;
while (1) {
    for my $fh ($sel->can_read) {
        if ($fh == \*STDIN) {
            my $line = <STDIN>;
            exit 0 unless defined $line;
            next;
        }
        if ($fh == $listen) {
            my $c = $listen->accept or next;
            $conns{$c} = $c;
            $sel->add($c);
            next;
        }
        my $pdu = $fh->read_pdu;
        if (!defined $pdu) {
            $sel->remove($fh);
            delete $conns{$fh};
            close $fh;
            next;
        }
        my $cmd = $pdu->{cmd};
        if ($cmd == 0x00000009 || $cmd == 0x00000002) {
            print $rec "bind $cmd\n";
            my $ok = ($pdu->{system_id} eq $sysid && $pdu->{password} eq $pw);
            if ($cmd == 0x00000009) {
                $fh->bind_transceiver_resp(seq => $pdu->{seq}, system_id => 'netsmpp',
                    status => $ok ? 0 : 0x0E);
            } else {
                $fh->bind_transmitter_resp(seq => $pdu->{seq}, system_id => 'netsmpp',
                    status => $ok ? 0 : 0x0E);
            }
        } elsif ($cmd == 0x00000004) {
            my $id = sprintf('%d', $next_id++);
            print $rec join(' ', 'submit', $id, $pdu->{registered_delivery},
                $pdu->{destination_addr}, unpack('H*', $pdu->{short_message})), "\n";
            $fh->submit_sm_resp(seq => $pdu->{seq}, message_id => $id);
            if (($pdu->{registered_delivery} & 1) && $stat ne 'none') {
                $fh->deliver_sm(
                    async            => 1,
                    source_addr      => $pdu->{destination_addr},
                    destination_addr => $pdu->{source_addr},
                    esm_class        => 0x04,
                    short_message    => "id:$id sub:001 dlvrd:001 submit date:2612051200 "
                        . "done date:2612051200 stat:$stat err:000 text:",
                );
            }
        } elsif ($cmd == 0x00000015) {
            $fh->enquire_link_resp(seq => $pdu->{seq});
        } elsif ($cmd == 0x00000006) {
            $fh->unbind_resp(seq => $pdu->{seq});
        } elsif ($cmd == 0x80000005) {
            print $rec "receipt_answered $pdu->{status}\n";
        }
    }
}
