# signoff for Request Tracker 5: the "purchases" lifecycle and the settings read by the
# "Report to signoff" scrip (integrations/request-tracker/initdata.pl).
#
# Copy to /etc/request-tracker5/RT_SiteConfig.d/60-signoff.pm (RT 5 reads every *.pm in that
# directory, in name order), set $SignoffURL and $SignoffToken below, and restart RT (Apache or
# rt-server). Lifecycles and the right they define must be known before the initdata is loaded.

# Flow (see docs/integrations/request-tracker.md):
#   new / open            an agent works on the request (fills in Amount, ...)
#   approval requested    the agent asks for approval: signoff's rule on this status starts the process
#   waiting for approval  set by signoff once the approvers have been asked
#   approved / rejected   set by signoff with the outcome (with a comment naming the approvers)
#   resolved              the agent closes the request
# Only holders of the RecordApproval right (the "signoff" RT user and SuperUsers) can set the three
# statuses signoff owns, so an agent cannot approve their own request by picking a status.
Set(%Lifecycles,
    purchases => {
        type     => 'ticket',
        initial  => ['new'],
        active   => ['open', 'approval requested', 'waiting for approval', 'approved'],
        inactive => ['rejected', 'resolved', 'deleted'],

        defaults => {
            on_create => 'new',
            approved  => 'open',
            denied    => 'rejected',
            reminder_on_open    => 'open',
            reminder_on_resolve => 'resolved',
        },

        # Any status to any other; rights below narrow who may set which.
        transitions => {
            ''                     => ['new', 'open', 'approval requested'],
            'new'                  => ['open', 'approval requested', 'waiting for approval', 'approved', 'rejected', 'resolved', 'deleted'],
            'open'                 => ['new', 'approval requested', 'waiting for approval', 'approved', 'rejected', 'resolved', 'deleted'],
            'approval requested'   => ['new', 'open', 'waiting for approval', 'approved', 'rejected', 'resolved', 'deleted'],
            'waiting for approval' => ['new', 'open', 'approval requested', 'approved', 'rejected', 'resolved', 'deleted'],
            'approved'             => ['new', 'open', 'approval requested', 'waiting for approval', 'rejected', 'resolved', 'deleted'],
            'rejected'             => ['new', 'open', 'approval requested', 'waiting for approval', 'approved', 'resolved', 'deleted'],
            'resolved'             => ['new', 'open', 'approval requested', 'waiting for approval', 'approved', 'rejected', 'deleted'],
            'deleted'              => ['new', 'open', 'approval requested', 'waiting for approval', 'approved', 'rejected', 'resolved'],
        },

        rights => {
            '* -> waiting for approval' => 'RecordApproval',
            '* -> approved'             => 'RecordApproval',
            '* -> rejected'             => 'RecordApproval',
            '* -> deleted'              => 'DeleteTicket',
            '* -> *'                    => 'ModifyTicket',
        },

        actions => [
            'new -> approval requested'      => { label => 'Request approval', update => 'Comment' },
            'open -> approval requested'     => { label => 'Request approval', update => 'Comment' },
            'rejected -> approval requested' => { label => 'Request approval again', update => 'Comment' },
            'new -> open'                    => { label => 'Open It' },
            'approved -> resolved'           => { label => 'Resolve', update => 'Comment' },
            '* -> deleted'                   => { label => 'Delete' },
        ],
    },
    # Tickets can move between General (the default lifecycle) and Purchases.
    __maps__ => {
        'default -> purchases' => {
            'new' => 'new', 'open' => 'open', 'stalled' => 'open',
            'resolved' => 'resolved', 'rejected' => 'rejected', 'deleted' => 'deleted',
        },
        'purchases -> default' => {
            'new' => 'new', 'open' => 'open', 'approval requested' => 'open',
            'waiting for approval' => 'open', 'approved' => 'open',
            'rejected' => 'rejected', 'resolved' => 'resolved', 'deleted' => 'deleted',
        },
    },
);

# Where the scrip reports tickets: signoff's base URL (no trailing /v1) and a token with the
# approvals:write scope (`signoff token --tenant TENANT --scope approvals:write`).
# Set($SignoffURL, 'https://signoff.example.com');
# Set($SignoffToken, 'eyJ...');
# Seconds the scrip waits for signoff before it gives up (and logs it); the RT user's update
# waits that long too, since scrips run inside it.
Set($SignoffTimeout, 10);
