# signoff for Request Tracker 5: the Purchases queue, its custom field, the "signoff" RT user,
# the "purchase-approvers" group, the "Manager" user custom field, rights, and the scrip that
# reports Purchases tickets to signoff.
#
# Load once, after RT_SiteConfig.d/60-signoff.pm is in place (it defines the "purchases" lifecycle
# and the RecordApproval right this file uses):
#   rt-setup-database-5 --action insert --datafile integrations/request-tracker/initdata.pl
# With RT_SIGNOFF_PASSWORD in the environment, the "signoff" RT user gets that password.
# Loading it again when the Purchases queue exists does nothing.
use strict;
use warnings;

# Loading the file again does nothing (no second scrip, no errors about what exists): when the
# Purchases queue is there, every list below is emptied before RT reads it.
our ( @Queues, @CustomFields, @Users, @Groups, @ACL, @Scrips );
our @Initial = (sub {
    my $queue = RT::Queue->new( RT->SystemUser );
    $queue->Load('Purchases');
    return 1 unless $queue->id;
    RT->Logger->warning("signoff initdata: the Purchases queue exists already; nothing loaded");
    @$_ = () for \@Queues, \@CustomFields, \@Users, \@Groups, \@ACL, \@Scrips;
    return 1;
});

@Queues = ({
    Name              => 'Purchases',
    Description       => 'Purchase requests approved through signoff',
    Lifecycle         => 'purchases',
    CorrespondAddress => '',
    CommentAddress    => '',
});

@CustomFields = (
    {
        Name        => 'Amount',
        Description => 'Total amount of the purchase',
        Type        => 'FreeformSingle',
        LookupType  => 'RT::Queue-RT::Ticket',
        ApplyTo     => 'Purchases',
    },
    {
        # The RT user Name of the user's manager; sync.py sends it to signoff as manager_id.
        Name        => 'Manager',
        Description => "RT user name of this user's manager (signoff's manager_id)",
        Type        => 'FreeformSingle',
        LookupType  => 'RT::User',
    },
);

# The RT user whose credentials signoff's host action uses to set statuses and comment.
# Without RT_SIGNOFF_PASSWORD it has no password: set one with `rt-passwd-5 signoff` or in the
# web UI (Admin > Users > signoff); REST2 cannot (PUT /REST/2.0/user/signoff {"Password": ...}
# answers 500 in RT 5.0.3). Then put base64("signoff:PASSWORD") into the host action's
# secrets.rt_basic.
@Users = ({
    Name       => 'signoff',
    RealName   => 'signoff approvals',
    Comments   => 'Used by signoff to record approval outcomes on Purchases tickets',
    Privileged => 1,
    ( $ENV{RT_SIGNOFF_PASSWORD} ? ( Password => $ENV{RT_SIGNOFF_PASSWORD} ) : () ),
});

# Approvers for purchases; sync.py sends RT group names as signoff roles.
@Groups = ({
    Name        => 'purchase-approvers',
    Description => 'Approve purchase requests (a signoff role)',
});

@ACL = (
    # Staff work on Purchases tickets (but cannot set the statuses guarded by RecordApproval).
    (map { {
        Queue       => 'Purchases',
        Right       => $_,
        GroupDomain => 'SystemInternal',
        GroupType   => 'Privileged',
    } } qw(SeeQueue ShowTicket CreateTicket ModifyTicket CommentOnTicket ReplyToTicket
           ShowTicketComments OwnTicket SeeCustomField ModifyCustomField)),
    # Requestors see their own tickets.
    (map { {
        Queue       => 'Purchases',
        Right       => $_,
        GroupDomain => 'RT::Queue-Role',
        GroupType   => 'Requestor',
    } } qw(ShowTicket ReplyToTicket)),
    # signoff records outcomes.
    (map { {
        Queue  => 'Purchases',
        Right  => $_,
        UserId => 'signoff',
    } } qw(SeeQueue ShowTicket ModifyTicket CommentOnTicket ShowTicketComments RecordApproval
           SeeCustomField)),
);

my $is_applicable = <<'CODE';
# Report on create, on every status change, and when a ticket is moved into the queue.
my $txn  = $self->TransactionObj;
my $type = $txn->Type;
return 1 if $type eq 'Create' || $type eq 'Status';
return 1 if $type eq 'Set' && ( $txn->Field || '' ) =~ /^(?:Status|Queue)$/;
return 0;
CODE

my $commit = <<'CODE';
# PUT {SignoffURL}/v1/tickets/{id} with the ticket's subject, first requestor (RT user Name),
# new status and custom fields. Failures are logged, never raised: the RT update goes through.
my $ticket = $self->TicketObj;
my $txn    = $self->TransactionObj;
my $id     = $ticket->id;
my $ok = eval {
    require LWP::UserAgent;
    require HTTP::Request;
    require JSON;
    my $base  = RT->Config->Get('SignoffURL');
    my $token = RT->Config->Get('SignoffToken');
    unless ($base) {
        RT->Logger->warning("signoff: \$SignoffURL is not set; ticket #$id not reported");
        return 1;
    }
    $base =~ s{/+$}{};

    my $status = ( $txn->Type eq 'Status' || ( $txn->Type eq 'Set' && $txn->Field eq 'Status' ) )
        ? $txn->NewValue : $ticket->Status;
    my $requestor = $ticket->Requestors->UserMembersObj;
    $requestor->OrderBy( FIELD => 'id', ORDER => 'ASC' );
    $requestor = $requestor->First;

    my %attributes;
    my $cfs = $ticket->CustomFields;
    while ( my $cf = $cfs->Next ) {
        # Numbers as JSON numbers (so rule conditions can compare them), the rest as strings.
        my @values = map { my $v = $_->Content; $v =~ /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$/ ? $v + 0 : $v }
            grep { defined $_->Content && length $_->Content }
            @{ $ticket->CustomFieldValues( $cf->id )->ItemsArrayRef };
        next unless @values;
        $attributes{ $cf->Name } = $cf->SingleValue ? $values[0] : \@values;
    }
    $attributes{queue} = $ticket->QueueObj->Name;

    my %report = (
        title      => substr( $ticket->Subject // '', 0, 500 ),
        status     => $status,
        attributes => \%attributes,
    );
    # signoff ids hold no whitespace or slash (its 422 would refuse the whole report).
    if ( $requestor ) {
        my $name = $requestor->Name;
        if ( $name =~ m{[\s/]} || length($name) > 200 ) {
            RT->Logger->warning("signoff: ticket #$id: requestor '$name' is not a valid signoff id; sent without requester_id");
        }
        else {
            $report{requester_id} = $name;
        }
    }
    my $body = JSON->new->utf8->canonical->encode( \%report );
    my $url = "$base/v1/tickets/$id";
    my $req = HTTP::Request->new( PUT => $url );
    $req->header( 'Content-Type' => 'application/json' );
    $req->header( 'Authorization' => "Bearer $token" ) if $token;
    $req->content($body);
    my $ua = LWP::UserAgent->new(
        timeout  => RT->Config->Get('SignoffTimeout') || 10,
        agent    => 'rt-signoff/1',
        env_proxy => 0,
    );
    my $res = $ua->request($req);
    if ( $res->is_success ) {
        RT->Logger->info( "signoff: ticket #$id reported as '$status': " . $res->code );
    }
    else {
        # LWP's own failures (refused, timed out) carry the reason in the status line already.
        my $answer = $res->header('Client-Warning') ? '' : substr( $res->decoded_content // '', 0, 500 );
        RT->Logger->error( "signoff: PUT $url failed: " . $res->status_line . " $answer" );
    }
    1;
};
RT->Logger->error("signoff: reporting ticket #$id failed: $@") unless $ok;
return 1;
CODE

@Scrips = ({
    Description            => 'Report to signoff',
    Queue                  => 'Purchases',
    ScripCondition         => 'User Defined',
    ScripAction            => 'User Defined',
    Template               => 'Blank',
    Stage                  => 'TransactionCreate',
    CustomIsApplicableCode => $is_applicable,
    CustomPrepareCode      => 'return 1;',
    CustomCommitCode       => $commit,
});

1;
