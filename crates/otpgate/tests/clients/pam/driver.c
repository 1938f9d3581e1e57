/*
 * A minimal PAM application for otpgate's client tests: it authenticates ONE user through the
 * PAM service SERVICE whose config file is CONFDIR/SERVICE (pam_start_confdir, Linux-PAM >= 1.4,
 * so nothing is written to /etc/pam.d), and lets the test answer every prompt over pipes.
 *
 *   driver CONFDIR SERVICE USER
 *
 * stdout, one line per event, flushed at once:
 *   PROMPT <ECHO_OFF|ECHO_ON|INFO|ERROR|BINARY> <message>
 *       for ECHO_OFF and ECHO_ON the driver then reads the answer as one line from stdin
 *       (trailing "\n" / "\r\n" removed). In <message> a newline is written as the two
 *       characters \n, a carriage return as \r and a backslash as \\, so a prompt stays on one
 *       line. BINARY prompts are reported and refused (PAM_CONV_ERR).
 *   RESULT <retval> <pam_strerror(retval)>
 *       the last line: pam_authenticate's return value (or the failing pam_start_confdir's).
 * EOF on stdin while an answer is due makes the conversation return PAM_CONV_ERR.
 * Exit status: 0 if PAM_SUCCESS, 1 otherwise, 2 on bad usage.
 */
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_escaped(const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        default: putchar(*s);
        }
    }
}

/* Reads one line from stdin into a malloc'd string without its line end; NULL on EOF. */
static char *read_answer(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static int conversation(int num_msg, const struct pam_message **msg, struct pam_response **resp,
                        void *appdata)
{
    (void)appdata;
    if (num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG)
        return PAM_CONV_ERR;
    struct pam_response *r = calloc((size_t)num_msg, sizeof *r);
    if (!r)
        return PAM_BUF_ERR;
    for (int i = 0; i < num_msg; i++) {
        const char *style = "BINARY";
        int wants_answer = 0, is_text = 1;
        switch (msg[i]->msg_style) {
        case PAM_PROMPT_ECHO_OFF: style = "ECHO_OFF"; wants_answer = 1; break;
        case PAM_PROMPT_ECHO_ON: style = "ECHO_ON"; wants_answer = 1; break;
        case PAM_TEXT_INFO: style = "INFO"; break;
        case PAM_ERROR_MSG: style = "ERROR"; break;
        default: is_text = 0; break;
        }
        printf("PROMPT %s ", style);
        if (is_text)
            print_escaped(msg[i]->msg);
        putchar('\n');
        fflush(stdout);
        if (!is_text)
            goto fail;
        if (wants_answer) {
            r[i].resp = read_answer();
            if (!r[i].resp)
                goto fail;
        }
    }
    *resp = r;
    return PAM_SUCCESS;
fail:
    for (int i = 0; i < num_msg; i++) {
        if (r[i].resp) {
            memset(r[i].resp, 0, strlen(r[i].resp));
            free(r[i].resp);
        }
    }
    free(r);
    *resp = NULL;
    return PAM_CONV_ERR;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s CONFDIR SERVICE USER\n", argv[0]);
        return 2;
    }
    struct pam_conv conv = {conversation, NULL};
    pam_handle_t *h = NULL;
    int rc = pam_start_confdir(argv[2], argv[3], &conv, argv[1], &h);
    if (rc != PAM_SUCCESS) {
        printf("RESULT %d %s\n", rc, pam_strerror(NULL, rc));
        fflush(stdout);
        return 1;
    }
    rc = pam_authenticate(h, 0);
    printf("RESULT %d %s\n", rc, pam_strerror(h, rc));
    fflush(stdout);
    pam_end(h, rc);
    return rc == PAM_SUCCESS ? 0 : 1;
}
