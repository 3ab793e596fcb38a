/* Start-up for a Cortex-M program on newlib's semihosting C library (rdimon), in place of
 * newlib's crt0: the vector table; a reset handler that turns on the FPU (and on Armv8.1-M
 * Helium: the same CP10/CP11 access bits) before any code may use it, clears .bss, opens stdio
 * through semihosting, reads the command line the simulator was given (QEMU:
 * -semihosting-config arg=...) into argv and calls main. The stack and the heap are the linker
 * script's (the heap grows from `end` towards the stack), whatever the simulator would say. A
 * fault ends the program with status 3 instead of a silent hang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern uint32_t __stack_top, __bss_start__, __bss_end__;
extern void initialise_monitor_handles(void);
extern int main(int argc, char **argv);

void Reset_Handler(void);
void Fault_Handler(void);
void Start(void);

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))&__stack_top, /* initial stack pointer */
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
};

/* CPACR (0xE000ED88): full access to CP10 and CP11 (floating point, and M-profile vector
 * instructions), in assembly so no floating-point code can run before it. */
__attribute__((naked, noreturn)) void Reset_Handler(void) {
    __asm volatile(
        "ldr r0, =0xE000ED88\n"
        "ldr r1, [r0]\n"
        "orr r1, r1, #(0xF << 20)\n"
        "str r1, [r0]\n"
        "dsb\n"
        "isb\n"
        "b Start\n");
}

/* One semihosting call (the Arm semihosting interface: operation in r0, argument block in r1). */
static int semihost(int op, void *arg) {
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

#define SYS_GET_CMDLINE 0x15
#define MAX_ARGS 16

static char cmdline[1024];
static char *argv[MAX_ARGS + 1];

void Start(void) {
    memset(&__bss_start__, 0, (size_t)((char *)&__bss_end__ - (char *)&__bss_start__));
    initialise_monitor_handles();
    int argc = 0;
    struct { char *buf; int len; } block = { cmdline, (int)sizeof cmdline - 1 };
    if (semihost(SYS_GET_CMDLINE, &block) == 0) {
        cmdline[block.len] = 0;
        for (char *p = strtok(cmdline, " "); p && argc < MAX_ARGS; p = strtok(NULL, " ")) {
            argv[argc++] = p;
        }
    }
    exit(main(argc, argv));
}

void Fault_Handler(void) {
    _Exit(3);
}

/* newlib runs the C++-style constructor and destructor lists around main; without the compiler's
 * crti/crtn (-nostartfiles) the hooks around them are empty. */
void _init(void) {}
void _fini(void) {}
